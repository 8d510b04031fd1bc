"""An operator plan's step refused for capacity alone waits its turn in the guard's queue.

The guard holds it (a held decision that names what holds the slot, kept in its snapshot) and
releases it as a new decision ``d-<step>:released`` when the node holding the slot returns, as it
does for automatic proposals; a step refused for anything else (kill switch, exclusion, a run in
flight) is decided at once and never queued. Capacity is the guard's own arithmetic: a plan of two
serving nodes of one rack never has both out at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from policy.engine import guard_from_bytes, guard_to_bytes
from policy.lifecycle import IN_FLIGHT
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision
from streams.pipeline.guard_stage import GuardStage
from tests.builders import T0
from tests.unit.test_guard import place, prop
from tests.unit.test_guard_operator import SHIPPED, guard, judged, step


def node_says(
    stage: GuardStage, node: str, t: float, frm: NodeState, to: NodeState, why: str
) -> list[Decision]:
    """The node stage's proposal for ``node`` at ``t`` (its lifecycle moving on), judged by the guard."""
    p = prop(node, t - T0, place(int(node[1:]), f"r{int(node[1:]) % 5}")).model_copy(
        update={"id": f"{node}:{why}", "from_state": frm, "to_state": to, "trigger": why,
                "action": ActionKind.NONE}
    )  # fmt: skip
    stage.on_item("proposal", (t, node, 0), p.id, p.model_dump_json().encode(), 0, 0.0)
    stage.on_progress(0, (t + 1, "", 0))
    stage.release(0.0)
    out, stage.outbox = stage.outbox, []
    return out


def out_in_rack(stage: GuardStage, rack: str) -> list[str]:
    return sorted(n for n, i in stage.g.nodes.items() if i.placement.rack == rack and i.state in IN_FLIGHT)


def test_a_step_refused_for_capacity_is_held_and_released_when_the_first_node_returns() -> None:
    stage = guard(nodes=10, racks=5)  # n1 and n6 share rack r1; one node of the pool may be out
    first = judged(stage, step("n1"))
    assert first.executable and out_in_rack(stage, "r1") == ["n1"]

    second = judged(stage, step("n6"))
    failed = {c.name for c in second.guard if not c.passed}
    assert second.held and not second.executable and second.id == "d-wf-1.n6"
    assert "concurrency_rack" in failed and failed <= {"concurrency_rack", "concurrency_pool",
                                                       "concurrency_sku", "headroom"}  # fmt: skip
    assert second.reasons[0].startswith("waiting for capacity") and "n1 (rack r1" in second.reasons[0]
    assert second.to_state is NodeState.HEALTHY and stage.g.nodes["n6"].state is NodeState.HEALTHY
    assert [op.id for op in stage.g.operator_waiting] == ["wf-1.n6"]

    # The held step survives the guard's snapshot: the restored guard releases it.
    stage.g = guard_from_bytes(guard_to_bytes(stage.g))
    assert [op.id for op in stage.g.operator_waiting] == ["wf-1.n6"]

    # n1's run moves it along; n6 stays held all the while (never two of rack r1 out at once).
    for t, frm, to, why in (
        (T0 + 200, NodeState.QUARANTINED, NodeState.REPAIRING, "repair_started"),
        (T0 + 300, NodeState.REPAIRING, NodeState.VALIDATING, "repair_done"),
    ):
        assert not [d for d in node_says(stage, "n1", t, frm, to, why) if d.node == "n6"]
        assert out_in_rack(stage, "r1") == ["n1"]
    returned = node_says(stage, "n1", T0 + 400, NodeState.VALIDATING, NodeState.HEALTHY, "validation_passed")
    [released] = [d for d in returned if d.node == "n6"]
    assert released.id == "d-wf-1.n6:released" and released.executable and not released.held
    assert (released.playbook, released.plan_id, [a.actor for a in released.approvers]) == (
        "gpu-reboot",
        "plan-1",
        ["ann"],
    )
    assert released.reasons[0] == "released: capacity freed"
    assert out_in_rack(stage, "r1") == ["n6"] and stage.g.operator_waiting == []
    assert stage.g.running["n6"] == "d-wf-1.n6:released"


def test_a_held_step_is_decided_not_released_when_a_lever_now_refuses_it() -> None:
    stage = guard(nodes=10, racks=5)
    judged(stage, step("n1"))
    assert judged(stage, step("n6")).held
    now = datetime.fromtimestamp(T0 + 150, UTC)
    stage.on_control(ControlMessage(id="ks", time=now, kind=ControlKind.KILLSWITCH, scope="global",
                                    value={"on": True}, actor="ann"))  # fmt: skip
    stage.outbox = []
    out = node_says(stage, "n1", T0 + 200, NodeState.QUARANTINED, NodeState.HEALTHY, "validation_passed")
    [refused] = [d for d in out if d.node == "n6"]
    assert refused.id == "d-wf-1.n6:released" and not refused.executable and not refused.held
    assert {c.name for c in refused.guard if not c.passed} == {"killswitch"}
    assert stage.g.operator_waiting == [] and stage.g.nodes["n6"].state is NodeState.HEALTHY


def test_only_capacity_holds_a_step() -> None:
    """Kill switch and a run in flight refuse at once: not held, not queued."""
    stage = guard(nodes=10, racks=5)
    now = datetime.fromtimestamp(T0 + 50, UTC)
    stage.on_control(ControlMessage(id="ks", time=now, kind=ControlKind.KILLSWITCH, scope="pool:p1",
                                    value={"on": True}, actor="ann"))  # fmt: skip
    stage.outbox = []
    refused = judged(stage, step("n1"))
    assert not refused.executable and not refused.held and stage.g.operator_waiting == []
    stage.on_control(ControlMessage(id="ks2", time=now, kind=ControlKind.KILLSWITCH, scope="pool:p1",
                                    value={"on": False}, actor="ann"))  # fmt: skip
    stage.outbox = []
    assert judged(stage, step("n1", wf="wf-2")).executable
    again = judged(stage, step("n1", wf="wf-3"))  # n1 has a run in flight (and takes no new slot)
    assert {c.name for c in again.guard if not c.passed} == {"in_flight"}
    assert not again.held and stage.g.operator_waiting == []


def test_a_held_step_is_retired_after_max_wait() -> None:
    """The plan driver stops waiting after the same bound: a step retired here never runs later."""
    stage = guard(nodes=10, racks=5)
    judged(stage, step("n1"))
    assert judged(stage, step("n6")).held
    late = T0 + 100 + SHIPPED.max_wait_s + 1
    out = node_says(stage, "n2", late, NodeState.HEALTHY, NodeState.SUSPECT, "suspect")
    [retired] = [d for d in out if d.node == "n6"]
    assert retired.id == "d-wf-1.n6:capacity_wait_expired" and not retired.executable
    assert retired.trigger == "operator_plan" and "waited" in retired.reasons[0]
    assert stage.g.operator_waiting == [] and stage.g.nodes["n6"].state is NodeState.HEALTHY
