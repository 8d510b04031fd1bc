"""The Kubernetes actuator against the API stand-in with the real client: ownership, conflicts,
per-GPU drain, approved deletion around a PDB, last-moment kill switch; and the stand-in's watches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, watch

from actuators.base import TAINT_KEY, Escalate, Refused, StepContext, StepSpec
from actuators.kubernetes import CORDONED_ANNOTATION, KubernetesActuator, connect
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fakes.workflow_doubles import SwitchSafety

pytestmark = pytest.mark.integration
NODE = "gpu-node-1"
OPERATOR_TAINT = {"key": "ops.example.com/maintenance", "value": "bios", "effect": "NoSchedule"}


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        server.add_node(NODE)
        yield server


def step(op: str, timeout_s: float = 5.0, **params: object) -> StepSpec:
    return StepSpec(
        name=op, actuator="kubernetes", operation=op, mutating=True, timeout_s=timeout_s, params=params
    )


def ctx(safety: SwitchSafety | None = None, timeout_s: float = 5.0, **over: object) -> StepContext:
    fields: dict = dict(
        decision_id="d1",
        node=NODE,
        step="s",
        playbook="p",
        playbook_version="1.0",
        safety=safety or SwitchSafety(),
        deadline=time.monotonic() + timeout_s,
        failure_class="gpu_hardware",
        reasons=("Xid 79",),
    )
    fields.update(over)
    return StepContext(**fields)


def test_operator_cordon_and_taint_are_never_lifted(api: KubeApiServer) -> None:
    kube = KubernetesActuator(connect(api.url))
    core = client.CoreV1Api(connect(api.url))
    core.patch_node(
        NODE,
        {"spec": {"unschedulable": True, "taints": [OPERATOR_TAINT]}},
        _content_type="application/merge-patch+json",
    )

    kube.execute(step("cordon"), ctx())
    held = api.node(NODE)
    assert CORDONED_ANNOTATION not in held["metadata"]["annotations"]  # the cordon is not ours
    assert {t["key"] for t in held["spec"]["taints"]} == {OPERATOR_TAINT["key"], TAINT_KEY}
    assert kube.owns(NODE)  # our taint is ours

    result = kube.execute(step("uncordon"), ctx())
    after = api.node(NODE)
    assert after["spec"]["unschedulable"] is True, "the operator's cordon was lifted"
    assert [t["key"] for t in after["spec"]["taints"]] == [OPERATOR_TAINT["key"]]
    assert "operator" in result.detail and not kube.owns(NODE)


def test_uncordon_without_our_marks_changes_nothing(api: KubeApiServer) -> None:
    core = client.CoreV1Api(connect(api.url))
    core.patch_node(NODE, {"spec": {"unschedulable": True}}, _content_type="application/merge-patch+json")
    writes = len(api.calls("PATCH"))
    result = KubernetesActuator(connect(api.url)).execute(step("uncordon"), ctx())
    assert result.changed is False and len(api.calls("PATCH")) == writes
    assert api.node(NODE)["spec"]["unschedulable"] is True


def test_conflicting_writer_gets_409_and_cordon_recomputes(api: KubeApiServer) -> None:
    core = client.CoreV1Api(connect(api.url))
    api.concurrent_writes(2)
    result = KubernetesActuator(connect(api.url)).execute(step("cordon"), ctx())
    assert result.changed
    assert [c for _, _, c in api.calls("PATCH")] == [409, 409, 200]
    node = api.node(NODE)
    assert node["spec"]["unschedulable"] is True and node["metadata"]["annotations"]["other.io/touched"]
    # Repeating the same decision's cordon is a no-op.
    assert KubernetesActuator(connect(api.url)).execute(step("cordon"), ctx()).changed is False
    assert core.read_node(NODE).spec.unschedulable is True


def test_partial_drain_moves_only_pods_on_that_gpu(api: KubeApiServer) -> None:
    api.add_pod("on-gpu3", NODE, gpus=1, annotations={"breakfix.io/gpu-indices": "3"})
    api.add_pod("on-gpu1", NODE, gpus=1, annotations={"breakfix.io/gpu-indices": "1"})
    api.add_pod("env-gpu3", NODE, gpus=2, env={"NVIDIA_VISIBLE_DEVICES": "2,3"})
    api.add_pod("env-uuid", NODE, gpus=1, env={"NVIDIA_VISIBLE_DEVICES": "GPU-1234abcd"})
    api.add_pod("cpu-only", NODE)
    result = KubernetesActuator(connect(api.url)).execute(step("drain_gpu"), ctx(gpu=3))
    assert sorted(result.outputs["evicted"]) == ["default/env-gpu3", "default/env-uuid", "default/on-gpu3"]
    assert api.pods_on(NODE) == ["default/cpu-only", "default/on-gpu1"]
    assert api.node(NODE)["spec"].get("unschedulable") is None  # a per-GPU drain does not cordon


def test_pdb_wait_succeeds_when_budget_frees_within_the_step(api: KubeApiServer) -> None:
    api.add_pod("web-0", NODE, labels={"app": "web"})
    api.add_pod("web-1", "other", labels={"app": "web"})
    api.add_pdb("web", {"app": "web"}, min_available=2)
    kube = KubernetesActuator(connect(api.url), poll_s=0.1)

    def reschedule() -> None:  # the controller brings up a replacement elsewhere
        time.sleep(0.4)
        api.add_pod("web-2", "other", labels={"app": "web"})

    threading.Thread(target=reschedule, daemon=True).start()
    result = kube.execute(step("drain"), ctx(timeout_s=5))
    assert result.outputs["evicted"] == ["default/web-0"]
    codes = [c for _, _, c in api.calls("POST", "/eviction")]
    assert codes[0] == 429 and codes[-1] == 201
    assert api.pdb("web")["status"]["disruptionsAllowed"] == 0


def test_delete_around_pdb_only_with_playbook_flag_and_approval(api: KubeApiServer) -> None:
    api.add_pod("db-0", NODE, labels={"app": "db"})
    api.add_pdb("db", {"app": "db"}, min_available=1)
    kube = KubernetesActuator(connect(api.url), poll_s=0.1)
    with pytest.raises(Escalate):  # flag set but nobody approved
        kube.execute(step("drain", delete_on_pdb_block=True), ctx(timeout_s=0.5))
    assert not api.calls("DELETE")
    result = kube.execute(step("drain", delete_on_pdb_block=True), ctx(timeout_s=0.5, approved=True))
    assert result.outputs["deleted_around_pdb"] == ["default/db-0"] and api.pods_on(NODE) == []


def test_killswitch_flipping_at_the_last_moment_stops_the_write(api: KubeApiServer) -> None:
    safety = SwitchSafety(flip_after=1)  # the engine's check passes, the actuator's re-check does not
    with pytest.raises(Refused):
        KubernetesActuator(connect(api.url)).execute(step("cordon"), ctx(safety))
    assert not api.calls("PATCH") and api.node(NODE)["spec"].get("unschedulable") is None


def test_watch_streams_changes_and_answers_410_when_too_old() -> None:
    with KubeApiServer(history=3) as api:
        core = client.CoreV1Api(connect(api.url))
        for i in range(6):
            api.add_node(f"n{i}")
        listed = core.list_node()
        seen = []
        stream = watch.Watch().stream(
            core.list_node, resource_version=listed.metadata.resource_version, timeout_seconds=2
        )
        api.add_pod("p", "n0")
        core.patch_node("n1", {"spec": {"unschedulable": True}}, _content_type="application/merge-patch+json")
        for event in stream:
            seen.append((event["type"], event["object"].metadata.name))
            break
        assert seen == [("MODIFIED", "n1")]
        with pytest.raises(client.exceptions.ApiException) as gone:
            for _ in watch.Watch().stream(core.list_node, resource_version="1", timeout_seconds=1):
                pass
        assert gone.value.status == 410
