"""Decision → workflow → Kubernetes (real client, API stand-in) → node agent → validation → uncordon.

The node agent and the validator are recording doubles (no GPU here); the engine, the journal, the
playbook catalog and the Kubernetes actuator are the real ones, talking HTTP to the stand-in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actuators.base import TAINT_KEY, PermanentError, StepContext, StepResult, StepSpec
from actuators.kubernetes import CORDONED_ANNOTATION, DECISION_ANNOTATION, KubernetesActuator, connect
from actuators.playbooks import load_catalog
from actuators.workflow import Journal, WorkflowEngine, from_decision
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fakes.workflow_doubles import RecordingActuator, SwitchSafety, xid79_decision

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
NODE = "gpu-node-1"
AGENT_OPS = {"gpu_reset", "reboot", "collect_bundle", "cleanup_stale"}


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        server.add_node(NODE, labels={"pool": "train"})
        server.add_node("gpu-node-2", labels={"pool": "train"})
        server.add_pod("trainer-0", NODE, labels={"app": "trainer"}, gpus=8, owner_kind="StatefulSet")
        server.add_pod("trainer-1", "gpu-node-2", labels={"app": "trainer"}, gpus=8, owner_kind="StatefulSet")
        server.add_pod("dcgm-exporter-x", NODE, namespace="gpu-operator", owner_kind="DaemonSet")
        yield server


def make_engine(
    api: KubeApiServer,
    journal: Journal,
    safety: SwitchSafety,
    events: list[dict[str, Any]],
    agent: RecordingActuator | None = None,
) -> tuple[WorkflowEngine, RecordingActuator, RecordingActuator]:
    agent = agent or RecordingActuator(
        "node_agent", {"gpu_reset", "reboot", "collect_bundle", "cleanup_stale"}
    )
    validator = RecordingActuator("validate", {"run"})
    others = [RecordingActuator("ticket", {"create"}), RecordingActuator("health_override", {"set"})]
    kube = KubernetesActuator(connect(api.url), poll_s=0.1)
    engine = WorkflowEngine(load_catalog(), [kube, agent, validator, *others], journal, safety, events.append)
    return engine, agent, validator


def test_xid79_quarantine_drain_reset_validate_return(api: KubeApiServer, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    engine, agent, validator = make_engine(api, Journal(tmp_path / "j.db"), SwitchSafety(), events)
    request = from_decision(xid79_decision(node=NODE), pool="train")

    outcome = engine.run(request)

    assert outcome.status == "succeeded", outcome.detail
    assert outcome.playbook == "xid-ecc-conditional-drain-gpu-reset"
    assert outcome.executed == ("cordon", "drain", "gpu-reset", "validate", "uncordon")
    assert agent.calls == [("gpu-reset", "gpu_reset")] and validator.calls == [("validate", "run")]
    # The workload was evicted through the Eviction API; the DaemonSet pod stayed; nothing was deleted.
    assert api.pods_on(NODE) == ["gpu-operator/dcgm-exporter-x"]
    assert api.calls("POST", "/eviction") and not api.calls("DELETE")
    # Returned to service: our taint, cordon and marks are gone.
    node = api.node(NODE)
    assert not node["spec"].get("unschedulable") and not node["spec"].get("taints")
    assert DECISION_ANNOTATION not in node["metadata"]["annotations"]
    steps = [(e["data"]["step"], e["data"]["status"]) for e in events]
    assert steps[-1] == ("workflow", "succeeded") and ("drain", "succeeded") in steps
    assert all(e["type"] == "action.result" and e["data"]["decision_id"] == "dec-xid79" for e in events)

    # Idempotent: the same decision again does nothing at all.
    before = len(api.requests)
    assert engine.run(request).executed == ()
    assert len(api.requests) == before


def test_cordon_taints_and_annotates_before_drain(api: KubeApiServer, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    seen: dict[str, Any] = {}

    def look(step: StepSpec, ctx: StepContext) -> StepResult:
        seen.update(api.node(NODE))
        raise PermanentError("reset failed: GPU still off the bus")

    agent = RecordingActuator(
        "node_agent", {"gpu_reset", "reboot", "collect_bundle", "cleanup_stale"}, {"gpu_reset": look}
    )
    engine, _, validator = make_engine(api, Journal(tmp_path / "j.db"), SwitchSafety(), events, agent)
    outcome = engine.run(from_decision(xid79_decision(node=NODE)))

    assert seen["spec"]["unschedulable"] is True
    assert [t["key"] for t in seen["spec"]["taints"]] == [TAINT_KEY]
    assert seen["metadata"]["annotations"][DECISION_ANNOTATION] == "dec-xid79"
    assert seen["metadata"]["annotations"][CORDONED_ANNOTATION] == "true"
    assert seen["metadata"]["labels"]["breakfix.io/quarantined"] == "true"
    # A failed reset escalates and keeps the quarantine (no rollback in this playbook), no validation.
    assert outcome.status == "escalated" and "GPU still off the bus" in outcome.detail
    assert validator.calls == []
    assert api.node(NODE)["spec"]["unschedulable"] is True
    assert events[-1]["data"]["status"] == "failed" and events[-1]["data"]["detail"].startswith("escalated")


def test_pdb_blocking_eviction_escalates_without_deleting(api: KubeApiServer, tmp_path: Path) -> None:
    api.add_pdb("trainer", {"app": "trainer"}, min_available=2)
    events: list[dict[str, Any]] = []
    engine, agent, _ = make_engine(api, Journal(tmp_path / "j.db"), SwitchSafety(), events)
    catalog = engine.catalog
    pb = catalog.get("xid-ecc-conditional-drain-gpu-reset")
    fast = [s.model_copy(update={"timeout_s": 1.0}) if s.name == "drain" else s for s in pb.steps]
    catalog.playbooks[pb.name] = pb.model_copy(update={"steps": fast})

    started = time.monotonic()
    outcome = engine.run(from_decision(xid79_decision(node=NODE)))

    assert outcome.status == "escalated"
    assert "PodDisruptionBudget" in outcome.detail and "nothing deleted" in outcome.detail
    assert time.monotonic() - started < 5
    assert "default/trainer-0" in api.pods_on(NODE)
    assert len(api.calls("POST", "/eviction")) >= 3  # it kept asking within the budget
    assert all(code == 429 for _, _, code in api.calls("POST", "/eviction"))
    assert not api.calls("DELETE") and agent.calls == []
    assert api.node(NODE)["spec"]["unschedulable"] is True  # quarantine kept for the person


def test_killswitch_on_nothing_mutates(api: KubeApiServer, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    engine, agent, _ = make_engine(api, Journal(tmp_path / "j.db"), SwitchSafety(killswitch=True), events)
    outcome = engine.run(from_decision(xid79_decision(node=NODE), pool="train"))

    assert outcome.status == "paused" and "kill switch" in outcome.detail
    assert [m for m, _, _ in api.requests if m not in ("GET", "WATCH")] == []
    assert agent.calls == []
    assert events[-1]["data"]["status"] == "refused"


CHILD = """
import sys
from actuators.kubernetes import KubernetesActuator, connect
from actuators.playbooks import load_catalog
from actuators.workflow import Journal, WorkflowEngine, from_decision
from tests.fakes.workflow_doubles import RecordingActuator, SwitchSafety, block_forever, xid79_decision
url, journal, marker = sys.argv[1:4]
agent = RecordingActuator("node_agent", {"gpu_reset", "reboot", "collect_bundle", "cleanup_stale"},
                          {"gpu_reset": block_forever(marker)})
actuators = [KubernetesActuator(connect(url), poll_s=0.1), agent, RecordingActuator("validate", {"run"}),
             RecordingActuator("ticket", {"create"}), RecordingActuator("health_override", {"set"})]
engine = WorkflowEngine(load_catalog(), actuators, Journal(journal), SwitchSafety(), lambda e: None)
engine.run(from_decision(xid79_decision(node="gpu-node-1")))
"""


def test_crash_mid_workflow_resumes_without_repeating_mutations(api: KubeApiServer, tmp_path: Path) -> None:
    journal_path, marker = tmp_path / "journal.db", tmp_path / "hung"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, api.url, str(journal_path), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), "the engine never reached the GPU reset step"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    cordons = len(api.calls("PATCH", f"/nodes/{NODE}"))
    evictions = len(api.calls("POST", "/eviction"))
    assert cordons == 1 and evictions == 1

    events: list[dict[str, Any]] = []
    engine, agent, validator = make_engine(api, Journal(journal_path), SwitchSafety(), events)
    outcome = engine.run(from_decision(xid79_decision(node=NODE)))

    assert outcome.status == "succeeded", outcome.detail
    assert outcome.executed == ("gpu-reset", "validate", "uncordon")  # cordon and drain not repeated
    assert len(api.calls("POST", "/eviction")) == evictions
    assert len(api.calls("PATCH", f"/nodes/{NODE}")) == cordons + 1  # only the uncordon
    assert agent.calls == [("gpu-reset", "gpu_reset")] and validator.calls == [("validate", "run")]
    assert not api.node(NODE)["spec"].get("unschedulable")
