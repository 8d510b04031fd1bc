"""`breakfix run --role actuators` with real actuators, end to end on the real Tansu broker.

An Xid 79 decision on the decisions topic → the actuator stage (a `breakfix run --role actuators`
process) → the Kubernetes actuator (real client, API stand-in: cordon + taint, eviction through the
Eviction API within a PodDisruptionBudget) → GPU reset and dcgmi diag by `breakfix node-agent
--simulate` (another process, over the breakfix.commands topic) → validation (diag, allocatable GPUs,
the site's test workload command, a quiet window on the symptom feed) → uncordon → every step's
``action.result`` on breakfix.events. Then the escalation-ticket playbook for a gpu_hardware/ticket
decision; the same Xid through SLURM drain → resume on the real slurmctld; and a decision whose
playbooks need an unconfigured actuator is refused with the option to add, nothing touched.

Simulated: only the GPUs behind the node agent (no GPU here). Every process is stopped by the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from actuators.kubernetes import DECISION_ANNOTATION
from actuators.playbooks import load_catalog
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, GuardCheck
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.settings import StreamSettings
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fakes.workflow_doubles import xid79_decision
from tests.integration.test_actuator_stage import DECISIONS, collect, publish
from tests.signing import sealed

if TYPE_CHECKING:
    from tests.fixtures.slurm import SlurmCluster

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
NODE = "gpu-node-1"
XID_PLAYBOOK = "xid-ecc-conditional-drain-gpu-reset"


@pytest.fixture
def settings(tansu: EmbeddedBroker, unique: str) -> StreamSettings:
    s = StreamSettings(broker=tansu.url, app_id=f"bf-{unique}", topic_prefix=f"r{unique}.")
    asyncio.run(create_topics(s))
    return s


class Processes:
    """The CLI processes a test starts; all stopped (SIGTERM, then SIGKILL) when the test ends."""

    def __init__(self, settings: StreamSettings, logs: Path) -> None:
        self.env = {
            **os.environ,
            "BREAKFIX_BROKER": settings.broker,
            "BREAKFIX_APP_ID": settings.app_id,
            "BREAKFIX_TOPIC_PREFIX": settings.topic_prefix,
            "BREAKFIX_SESSION_TIMEOUT_S": "4",
            "BREAKFIX_HEARTBEAT_S": "0.5",
        }
        self.logs = logs
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "breakfix"), *args],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((proc, log))
        return proc, log

    def wait_for(self, log: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not seen (exit {proc.poll()}):\n{log.read_text(errors='replace')}")

    def stop(self, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        return proc.returncode

    def close(self) -> None:
        for proc, _ in reversed(self.started):
            self.stop(proc)


@pytest.fixture
def procs(settings: StreamSettings, tmp_path: Path) -> Iterator[Processes]:
    p = Processes(settings, tmp_path)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        server.add_node(NODE, labels={"pool": "train"})
        server.add_node("gpu-node-2", labels={"pool": "train"})
        server.add_pod("trainer-0", NODE, labels={"app": "trainer"}, gpus=8, owner_kind="StatefulSet")
        server.add_pod("trainer-1", "gpu-node-2", labels={"app": "trainer"}, gpus=8, owner_kind="StatefulSet")
        server.add_pod("dcgm-exporter-x", NODE, namespace="gpu-operator", owner_kind="DaemonSet")
        server.add_pdb("trainer", {"app": "trainer"}, min_available=1)  # allows exactly one eviction
        yield server


def quick_catalog(dest: Path) -> Path:
    """The shipped catalog with validation's 600 s quiet window shortened to 2 s (an operator's own
    catalog, passed with --catalog): everything else, steps and checks included, as shipped."""
    dest.mkdir()
    for pb in load_catalog().playbooks.values():
        doc = pb.model_dump(mode="json", exclude_defaults=True)
        for step in doc["steps"]:
            if step.get("params", {}).get("quiet_s"):
                step["params"]["quiet_s"] = 2
        (dest / f"{pb.name}.yaml").write_text(yaml.safe_dump(doc))
    return dest


def exec_decision(node: str, decision_id: str, **over: Any) -> Decision:
    checks = [
        GuardCheck(name="headroom", passed=True, figures={"pool_free_gpus": 64}),
        GuardCheck(name="exclusion", passed=True, figures={"pool": "train"}),
    ]
    return xid79_decision(node=node, decision_id=decision_id, guard=checks, **over)


def run_of(decision_id: str):  # type: ignore[no-untyped-def]
    """Until the run's outcome (step ``workflow``) for ``decision_id`` is on the events topic."""

    def done(events: list[dict[str, Any]]) -> bool:
        return any(
            e["data"]["decision_id"] == decision_id and e["data"]["step"] == "workflow" for e in events
        )

    return done


def step_of(events: list[dict[str, Any]], decision_id: str, step: str) -> dict[str, Any] | None:
    found = (e for e in events if e["data"]["decision_id"] == decision_id and e["data"]["step"] == step)
    return next(found, None)


def engine_steps(events: list[dict[str, Any]], decision_id: str) -> list[tuple[str, str]]:
    """(step, status) of the engine's results for one decision, in order (agent answers left out)."""
    return [
        (e["data"]["step"], e["data"]["status"])
        for e in events
        if e["data"]["decision_id"] == decision_id and e["source"] == "breakfix.workflow"
    ]


def agent_answers(events: list[dict[str, Any]], decision_id: str) -> list[str]:
    return [
        e["data"]["action"]
        for e in events
        if e["data"]["decision_id"] == decision_id and e["source"].startswith("node-agent/")
    ]


def test_xid79_through_kubernetes_and_the_node_agent(
    settings: StreamSettings, procs: Processes, api: KubeApiServer, tmp_path: Path
) -> None:
    workload_log = tmp_path / "workload.log"
    tickets = tmp_path / "tickets"
    agent, agent_log = procs.start(
        "agent",
        "node-agent",
        "--simulate",
        "--node",
        NODE,
        "--verbose",
        "--state-dir",
        str(tmp_path / "agent"),
    )
    procs.wait_for(agent_log, f"node-agent {NODE}", agent)
    stage, stage_log = procs.start(
        "stage",
        "run", "--role", "actuators",
        "--kube-url", api.url,
        "--node-agent",
        "--tickets", str(tickets),
        "--workload-cmd", f"sh -c 'echo {{node}} {{gpu}} >> {workload_log}'",
        "--catalog", str(quick_catalog(tmp_path / "catalog")),
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    procs.wait_for(stage_log, "actuator stage ready", stage)
    text = stage_log.read_text()
    assert "not configured: slurm" in text and "not configured: health_override" in text

    xid = exec_decision(NODE, "dec-k8s-xid79")
    ticket = exec_decision(
        NODE,
        "dec-k8s-ticket",
        from_state=NodeState.VALIDATING,
        to_state=NodeState.ESCALATED,
        trigger="validation_failed",
        action=ActionKind.TICKET,
    )
    started = time.monotonic()
    asyncio.run(publish(settings, DECISIONS, [(NODE.encode(), sealed(xid)), (NODE.encode(), sealed(ticket))]))
    events = asyncio.run(collect(settings, run_of(ticket.id), timeout_s=90))
    elapsed = time.monotonic() - started

    assert engine_steps(events, xid.id) == [
        ("started", "in_progress"),
        ("cordon", "succeeded"),
        ("drain", "succeeded"),
        ("gpu-reset", "succeeded"),
        ("validate", "succeeded"),
        ("uncordon", "succeeded"),
        ("workflow", "succeeded"),
    ], stage_log.read_text()
    assert all(e["_key"] == NODE and e["type"] == "action.result" for e in events)
    # The reset and the diag ran on the node's agent, over the commands topic, on GPU 3.
    assert agent_answers(events, xid.id) == ["gpu_reset", "dcgm_diag"]
    assert "gpu_reset" in agent_log.read_text()
    validation = next(
        e for e in events if e["data"]["decision_id"] == xid.id and e["data"]["step"] == "validate"
    )
    for check in ("dcgm_diag", "allocatable_gpus: 8/8", "test_workload", "quiet for"):
        assert check in validation["data"]["detail"]
    assert workload_log.read_text().split() == [NODE, "3"]
    # Drained through the Eviction API within the PDB (one disruption allowed): nothing deleted.
    assert api.pods_on(NODE) == ["gpu-operator/dcgm-exporter-x"]
    assert [code for _, _, code in api.calls("POST", "/eviction")] == [201]
    assert not api.calls("DELETE")
    # Returned to service: our cordon, taint and marks gone.
    node = api.node(NODE)
    assert not node["spec"].get("unschedulable") and not node["spec"].get("taints")
    assert DECISION_ANNOTATION not in node["metadata"]["annotations"]

    # The escalation: evidence collected read-only by the agent and filed on a hardware ticket.
    assert engine_steps(events, ticket.id) == [
        ("collect", "succeeded"),
        ("ticket", "succeeded"),
        ("workflow", "succeeded"),
    ]
    filed = [p.read_text() for p in tickets.glob("*.json")]
    assert len(filed) == 1 and NODE in filed[0] and "dec-k8s-ticket" in filed[0]

    assert procs.stop(stage) == 0 and "actuator stage stopped: 2 decisions" in stage_log.read_text()
    print(f"\nkubernetes xid79 + ticket: {elapsed:.1f}s from publish to the ticket run's outcome")


def test_a_playbook_needing_an_unconfigured_actuator_is_refused_with_the_option_to_add(
    settings: StreamSettings, procs: Processes, api: KubeApiServer, tmp_path: Path
) -> None:
    stage, stage_log = procs.start(
        "stage", "run", "--role", "actuators", "--kube-url", api.url, "--state-dir", str(tmp_path / "s")
    )
    procs.wait_for(stage_log, "actuator stage ready", stage)
    xid = exec_decision(NODE, "dec-no-agent")
    asyncio.run(publish(settings, DECISIONS, [(NODE.encode(), sealed(xid))]))
    events = asyncio.run(collect(settings, run_of(xid.id)))

    (outcome,) = [e["data"] for e in events if e["data"]["decision_id"] == xid.id]
    assert outcome["status"] == "refused"
    assert "no configured actuators can run a playbook for gpu_hardware/gpu_reset" in outcome["detail"]
    assert f"{XID_PLAYBOOK} needs node_agent (configure --node-agent" in outcome["detail"]
    assert "slurm-xid-drain-gpu-reset needs node_agent (configure --node-agent" in outcome["detail"]
    assert "slurm (configure --slurm" in outcome["detail"]
    assert [m for m, _, _ in api.requests if m not in ("GET", "WATCH")] == [], "nothing was touched"


@pytest.mark.slow
def test_xid79_through_slurm_drain_and_resume(
    settings: StreamSettings, procs: Processes, slurm: SlurmCluster, tmp_path: Path
) -> None:
    agent, agent_log = procs.start(
        "agent",
        "node-agent",
        "--simulate",
        "--gpus",
        "4",
        "--node",
        "gpu01",
        "--state-dir",
        str(tmp_path / "agent"),
    )
    procs.wait_for(agent_log, "node-agent gpu01", agent)
    stage, stage_log = procs.start(
        "stage",
        "run", "--role", "actuators",
        "--slurm", "--slurm-conf", str(slurm.conf), "--slurm-gpus", "4",
        "--node-agent",
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    procs.wait_for(stage_log, "actuator stage ready", stage)
    assert "playbooks runnable: slurm-reboot, slurm-xid-drain-gpu-reset" in stage_log.read_text()

    out = slurm.run("sbatch", "-w", "gpu01", "--gres=gpu:1", "-o", "/dev/null", "--wrap", "sleep 4")
    assert out.returncode == 0, out.stderr
    slurm.wait_state("gpu01", lambda s: s.startswith("MIXED"))  # a job runs when the decision comes
    xid = exec_decision("gpu01", "dec-slurm-xid79")
    started = time.monotonic()
    asyncio.run(publish(settings, DECISIONS, [(b"gpu01", sealed(xid))]))
    events = asyncio.run(collect(settings, run_of(xid.id), timeout_s=90))
    elapsed = time.monotonic() - started

    assert engine_steps(events, xid.id) == [
        ("started", "in_progress"),
        ("drain", "succeeded"),
        ("gpu-reset", "succeeded"),
        ("validate", "succeeded"),
        ("resume", "succeeded"),
        ("workflow", "succeeded"),
    ], stage_log.read_text()
    drained = next(e for e in events if e["data"]["decision_id"] == xid.id and e["data"]["step"] == "drain")
    assert "DRAINED" in drained["data"]["detail"], "the drain waited for the running job"
    assert agent_answers(events, xid.id) == ["gpu_reset", "dcgm_diag"]
    validation = next(
        e for e in events if e["data"]["decision_id"] == xid.id and e["data"]["step"] == "validate"
    )
    assert "allocatable_gpus: 4/4" in validation["data"]["detail"]
    slurm.wait_state("gpu01", lambda s: s == "IDLE")
    assert slurm.node("gpu01")["reason"] == ""
    assert procs.stop(stage) == 0
    print(f"\nslurm xid79: {elapsed:.1f}s from publish to the run's outcome")
