"""Per-GPU quarantine through DRA device taints, with the real ``kubernetes`` client against the
API stand-in serving ``resource.k8s.io`` as each Kubernetes release does (tests/fakes/kube_dra.py,
from the ``k8s.io/api/resource`` types and their lifecycle tags).

One GPU's fault taints that one device (a DeviceTaintRule selecting driver, pool and device), the
validation runs on the tainted GPU, and the rule is removed after it passes; a device-plugin cluster
takes the per-GPU drain instead; the product only touches the rules it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actuators.base import TAINT_KEY, PermanentError, StepContext, StepResult, StepSpec
from actuators.dispatch import Dispatcher
from actuators.kubernetes import KubernetesActuator, connect
from actuators.kubernetes.dra import TOLERATION, DeviceTaints, rule_name
from actuators.playbooks import load_catalog
from actuators.workflow import Journal, WorkflowEngine
from schemas.decision import ActionKind
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fakes.workflow_doubles import OPS, RecordingActuator, SwitchSafety, xid79_decision

pytestmark = pytest.mark.integration
NODE = "gpu-node-1"
GROUP = "/apis/resource.k8s.io"


def server(minor: int, gate: bool = False) -> KubeApiServer:
    api = KubeApiServer(k8s_minor=minor, device_taints_gate=gate)
    api.add_node(NODE)
    api.dra.add_gpus(NODE)
    api.dra.add_gpus("gpu-node-2")
    return api


@pytest.fixture
def v137() -> Iterator[KubeApiServer]:
    with server(37) as api:
        yield api


def step(op: str, **params: object) -> StepSpec:
    return StepSpec(name=op, actuator="kubernetes", operation=op, mutating=True, timeout_s=5, params=params)


def ctx(gpu: int | None = 3, **over: Any) -> StepContext:
    fields: dict[str, Any] = {
        "decision_id": "d1", "node": NODE, "step": "s", "playbook": "gpu-reset-only",
        "playbook_version": "1.0", "safety": SwitchSafety(), "deadline": time.monotonic() + 5, "gpu": gpu,
        "failure_class": "gpu_memory",
    }  # fmt: skip
    return StepContext(**{**fields, **over})


@pytest.mark.parametrize(
    ("minor", "gate", "version"),
    [(0, False, None), (34, False, None), (34, True, "v1alpha3"), (36, False, "v1beta2"), (37, False, "v1")],
)
def test_the_taint_rule_version_is_discovered(minor: int, gate: bool, version: str | None) -> None:
    with server(minor, gate) as api:
        assert DeviceTaints(connect(api.url)).version("devicetaintrules") == version


def test_one_gpu_is_tainted_and_only_that_one(v137: KubeApiServer) -> None:
    kube = KubernetesActuator(connect(v137.url))
    out = kube.execute(step("quarantine_gpu"), ctx())
    assert out.changed and out.outputs == {"path": "dra", "device": "gpu-3", "effect": "NoExecute"}
    (rule,) = v137.dra.rules.values()
    assert rule["spec"]["deviceSelector"] == {"driver": "gpu.nvidia.com", "pool": NODE, "device": "gpu-3"}
    assert rule["spec"]["taint"]["key"] == TAINT_KEY and rule["spec"]["taint"]["effect"] == "NoExecute"
    assert v137.calls("POST", f"{GROUP}/v1/devicetaintrules") and kube.owns(NODE)
    assert kube.execute(step("quarantine_gpu"), ctx()).changed is False  # a repeat changes nothing
    assert v137.dra.rules_on("gpu-2") == [] and not kube.owns("gpu-node-2")


def test_a_stronger_effect_renews_time_added(v137: KubeApiServer) -> None:
    kube = KubernetesActuator(connect(v137.url))
    kube.execute(step("quarantine_gpu", effect="NoSchedule"), ctx())
    before = dict(next(iter(v137.dra.rules.values())))
    time.sleep(1.1)
    kube.execute(step("quarantine_gpu", effect="NoExecute"), ctx())
    after = next(iter(v137.dra.rules.values()))
    assert after["metadata"]["generation"] == 2
    assert after["spec"]["taint"]["timeAdded"] != before["spec"]["taint"]["timeAdded"]


def test_dry_run_is_the_none_effect_where_the_cluster_has_it() -> None:
    with server(35, gate=True) as api:
        out = KubernetesActuator(connect(api.url)).execute(step("quarantine_gpu", dry_run=True), ctx())
        assert (
            out.outputs["effect"] == "None"
            and api.dra.rules_on("gpu-3")[0]["spec"]["taint"]["effect"] == "None"
        )
    with (
        server(34, gate=True) as api,
        pytest.raises(PermanentError, match=r"422 .*spec\.taint\.effect: Unsupported value: 'None'"),
    ):
        KubernetesActuator(connect(api.url)).execute(step("quarantine_gpu", dry_run=True), ctx())


def test_only_the_products_rule_is_lifted(v137: KubeApiServer) -> None:
    taints = DeviceTaints(connect(v137.url))
    taint = {"key": "ops.io/rma", "effect": "NoSchedule"}
    foreign = {
        "metadata": {"name": rule_name(NODE, 3), "labels": {"team": "ops"}},
        "spec": {"deviceSelector": {"device": "gpu-3"}, "taint": taint},
    }
    taints._call("POST", f"{GROUP}/v1/devicetaintrules", body=foreign)
    kube = KubernetesActuator(connect(v137.url))
    with pytest.raises(PermanentError, match="not the product's"):
        kube.execute(step("return_gpu"), ctx())
    with pytest.raises(PermanentError, match="not the product's"):
        kube.execute(step("quarantine_gpu"), ctx())
    assert v137.dra.rules[rule_name(NODE, 3)]["spec"]["taint"]["key"] == "ops.io/rma"
    assert not kube.owns(NODE)


def test_a_device_plugin_cluster_drains_the_gpus_pods_instead() -> None:
    with server(0) as api:
        api.add_pod("on-gpu3", NODE, gpus=1, annotations={"breakfix.io/gpu-indices": "3"})
        api.add_pod("on-gpu1", NODE, gpus=1, annotations={"breakfix.io/gpu-indices": "1"})
        kube = KubernetesActuator(connect(api.url))
        out = kube.execute(step("quarantine_gpu"), ctx())
        assert out.outputs["path"] == "device_plugin" and api.pods_on(NODE) == ["default/on-gpu1"]
        assert kube.execute(step("return_gpu"), ctx()).changed is False


class TolerantValidation(RecordingActuator):
    """The validation workload: it may run on the tainted GPU only because its claim carries the
    product's toleration; it records the rule it found on the device while it ran."""

    def __init__(self, api: KubeApiServer) -> None:
        super().__init__("validate", {"run"}, {"run": self._run})
        self.api, self.seen = api, []  # type: list[dict[str, Any]]

    def _run(self, step: StepSpec, c: StepContext) -> StepResult:
        rules = self.api.dra.rules_on(f"gpu-{c.gpu}")
        self.seen.extend(rules)
        tolerated = all(r["spec"]["taint"]["key"] == TOLERATION["key"] for r in rules)
        return StepResult(
            "burn-in on the tainted GPU", changed=False, validation="passed" if tolerated else "failed"
        )


def test_a_per_gpu_fault_is_quarantined_by_device_taint_and_returned_after_validation(
    v137: KubeApiServer, tmp_path: Path
) -> None:
    validation = TolerantValidation(v137)
    agent = RecordingActuator("node_agent", OPS["node_agent"])
    acts = [KubernetesActuator(connect(v137.url)), agent, validation]
    events: list[dict[str, Any]] = []
    engine = WorkflowEngine(load_catalog(), acts, Journal(":memory:"), SwitchSafety(), events.append)
    decision = xid79_decision(NODE, "d-sbe", gpu=3, failure_class="gpu_memory", action=ActionKind.GPU_RESET)
    handled = Dispatcher(engine, events.append, now=lambda: datetime.now(UTC)).handle(decision)
    assert handled.verdict == "succeeded" and handled.executed == (
        "quarantine-gpu",
        "gpu-reset",
        "validate",
        "return-gpu",
    )
    assert [r["spec"]["deviceSelector"]["device"] for r in validation.seen] == [
        "gpu-3"
    ]  # tainted while validated
    assert v137.dra.rules == {}  # returned
    assert v137.calls("DELETE", f"{GROUP}/v1/devicetaintrules/{rule_name(NODE, 3)}")


def test_the_site_validation_job_is_told_the_taint_key_to_tolerate(tmp_path: Path) -> None:
    from breakfix.actuation.workload import CommandWorkload

    out = tmp_path / "argv"
    ok, _ = CommandWorkload(f"sh -c 'echo {{node}} {{gpu}} {{taint_key}} > {out}'").run(NODE, 3, 10)
    assert ok and out.read_text().split() == [NODE, "3", TAINT_KEY] and TOLERATION["key"] == TAINT_KEY
