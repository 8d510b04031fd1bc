"""One lever model for every reader: the guard, the actuator stage and the API reach the same verdict
from the same control messages (node exclusions, decision approvals, a kill switch without ``on``),
and the model's own rules (binding, expiry, withdrawal, ordering) hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from breakfix.api.control import ControlState as ApiLevers
from policy.guard import Guard, GuardState, decision_id
from policy.levers import Levers, apply
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision
from streams.actuation.stage import ControlState as StageLevers
from tests.builders import T0
from tests.unit.test_guard import check, fleet, place, prop

START = datetime.fromtimestamp(T0, UTC)


def lever(
    kind: ControlKind, scope: str, minute: int = 0, actor: str = "ann", **value: object
) -> ControlMessage:
    return ControlMessage(
        id=f"c-{kind}-{scope}-{minute}-{actor}",
        time=START + timedelta(minutes=minute),
        kind=kind,
        scope=scope,
        value=dict(value),
        actor=actor,
        role="operator",
    )


def guard_with(*messages: ControlMessage) -> tuple[Guard, GuardState]:
    g, s = fleet(40)
    for m in messages:
        g.step(s, m)
    return g, s


def readers(*messages: ControlMessage) -> tuple[StageLevers, ApiLevers]:
    stage, api = StageLevers(), ApiLevers()
    for offset, m in enumerate(messages):
        stage.apply(m)
        api.apply(m, offset)
    return stage, api


def test_a_node_exclusion_holds_in_the_guard_the_actuator_stage_and_the_api() -> None:
    """The actuator stage honoured ``node:`` exclusions; the guard read the scope as a pool named
    ``node:n1`` and the API ignored exclusion messages. Now all three leave the node to people."""
    exclude = lever(ControlKind.EXCLUSION, "node:n1")
    g, s = guard_with(exclude)
    d = g.step(s, prop("n1", 10, place(1, "r1")))[0]
    assert not d.executable and check(d, "exclusion")["excluded"] is True
    other = g.step(s, prop("n2", 11, place(2, "r2")))[0]
    assert other.executable
    stage, api = readers(exclude)
    assert stage.excluded("n1", None) and api.excluded("n1", "p1")
    assert not stage.excluded("n2", None) and not api.excluded("n2", "p1")
    lifted = lever(ControlKind.EXCLUSION, "node:n1", 1, on=False)
    assert stage.apply(lifted), "lifting an exclusion resumes paused runs"
    api.apply(lifted, 1)
    assert not stage.excluded("n1", None) and not api.excluded("n1", "p1")


def test_a_pool_exclusion_reaches_a_node_through_its_pool() -> None:
    stage, api = readers(lever(ControlKind.EXCLUSION, "pool:p1"))
    assert api.excluded("n0", "p1") and not api.excluded("n0", "p2")
    assert stage.excluded("n0", "p1")
    stage.learn(_decided("n0", pool="p1"))
    assert stage.excluded("n0", None), "the stage knows the node's pool from the guard's figures"


def _decided(node: str, pool: str = "p1", action: ActionKind = ActionKind.RMA) -> Decision:
    g, s = guard_with()
    return g.step(s, prop(node, 10, place(0, "r0", pool=pool), action=action))[0]


def test_a_decision_approval_counts_for_the_guard_and_the_actuator_stage() -> None:
    """The guard looked approvals up as ``proposal:<id>``, an id no operator sees; the actuator stage
    and the API speak decision ids. Both readers now take ``decision:<id>``: the guard the id of the
    decision it records when it first judges the proposal."""
    p = prop("n1", 10, place(1, "r1"), action=ActionKind.RMA)
    scope = f"decision:{decision_id(p)}"
    grant = lever(ControlKind.APPROVAL, scope, node="n1", failure_class="gpu_hardware", action="rma")
    g, s = guard_with(grant)
    d = g.step(s, p)[0]
    assert d.id == decision_id(p) and d.executable
    assert check(d, "approval") == {"required": True, "approved": True}
    stage, _ = readers(grant)
    assert stage.approvers(d) == (("ann", "operator"),)


def test_approving_a_held_decision_counts_when_its_proposal_is_released() -> None:
    g, s = guard_with()
    first = g.step(s, prop("n0", 10, place(0, "r0")))[0]
    assert first.executable
    p = prop("n10", 11, place(10, "r0"), action=ActionKind.RMA)
    held = g.step(s, p)[0]
    assert held.held and held.id == decision_id(p)
    g.step(s, lever(ControlKind.APPROVAL, f"decision:{held.id}", 1, node="n10", action="rma"))
    back = prop("n0", 20, place(0, "r0"), to=NodeState.HEALTHY, action=ActionKind.RETURN_TO_SERVICE)
    out = g.step(s, back.model_copy(update={"from_state": NodeState.QUARANTINED}))
    released = [d for d in out if d.node == "n10"]
    assert [d.id for d in released] == [f"{held.id}:released"]
    assert released[0].executable and check(released[0], "approval")["approved"] is True


def test_an_approval_covers_only_the_class_and_action_it_names() -> None:
    grant = lever(ControlKind.APPROVAL, "node:n1", node="n1", failure_class="gpu_hardware", action="drain")
    g, s = guard_with(grant)
    rma = g.step(s, prop("n1", 10, place(1, "r1"), action=ActionKind.RMA))[0]
    assert check(rma, "approval")["approved"] is False
    stage, _ = readers(grant)
    assert stage.approvers(rma) == ()


def test_approvals_expire_and_can_be_withdrawn() -> None:
    lv = Levers()
    apply(lv, lever(ControlKind.APPROVAL, "node:n1", expires_at=(START + timedelta(hours=1)).isoformat()))
    apply(lv, lever(ControlKind.APPROVAL, "node:n1", actor="bob"))
    now = START.timestamp()
    assert [a.actor for a in lv.approvals_for("n1", "d", "gpu_hardware", "rma", now)] == ["ann", "bob"]
    assert [a.actor for a in lv.approvals_for("n1", "d", "gpu_hardware", "rma", now + 7200)] == ["bob"]
    apply(lv, lever(ControlKind.APPROVAL, "node:n1", 1, actor="bob", approved=False))
    assert lv.approvals_for("n1", "d", "gpu_hardware", "rma", now + 7200) == []


def test_a_kill_switch_message_without_on_engages_everywhere() -> None:
    """The API read a missing ``on`` as off; the guard, the actuator stage and the store as on."""
    bare = lever(ControlKind.KILLSWITCH, "pool:p1")
    g, s = guard_with(bare)
    d = g.step(s, prop("n1", 10, place(1, "r1")))[0]
    assert not d.executable and check(d, "killswitch") == {"engaged": "pool:p1"}
    stage, api = readers(bare)
    assert stage.killswitch_on("p1") and api.killswitch_on("p1") and not api.killswitch_on("p2")
    assert api.snapshot() == {"global": False, "pools": {"p1": True}}


def test_with_stamps_an_older_message_never_undoes_a_newer_one() -> None:
    lv = Levers()
    on = lever(ControlKind.KILLSWITCH, "global", 2, on=True)
    off = lever(ControlKind.KILLSWITCH, "global", 1, on=False)
    assert apply(lv, on, stamp=on.time).applied
    assert not apply(lv, off, stamp=off.time).applied and lv.killswitch_on(None)
    in_log_order = Levers()
    apply(in_log_order, on)
    apply(in_log_order, off)
    assert not in_log_order.killswitch_on(None), "without stamps the log's order decides"


def test_a_breaker_reset_is_handed_to_the_guard_not_kept() -> None:
    lv = Levers()
    change = apply(lv, lever(ControlKind.BREAKER_RESET, "global", backlog="discard"))
    assert change.reset is not None and change.reset.backlog == "discard" and lv == Levers()
