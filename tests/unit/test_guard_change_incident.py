"""A driver rollout that breaks a pool is one change incident with one rollback recommendation (the
scored simulator run used to print 39 rollback decisions for one rollout)."""

from __future__ import annotations

from policy.guard import Guard, GuardState
from policy.model import load_policy
from schemas.common import NodeState
from schemas.decision import ActionKind
from schemas.proposal import Registration
from tests.unit.test_guard import place, prop

POLICY = load_policy()


def test_change_attributed_suspects_in_one_pool_share_one_incident_and_one_rollback() -> None:
    g, s = Guard(POLICY), GuardState()
    nodes = [f"n{i:02d}" for i in range(12)]
    for i, n in enumerate(nodes):
        g.step(s, Registration(node=n, time=prop(n, 0, place(i)).time, placement=place(i, rack=f"r{i}")))
    out = []
    for i, n in enumerate(nodes):
        p = prop(n, 60.0 * i, place(i, rack=f"r{i}"), NodeState.SUSPECT, "change_regression")
        p = p.model_copy(update={"from_state": NodeState.HEALTHY, "action": ActionKind.ROLLBACK_CHANGE})
        out.extend(g.step(s, p))
    assert len(out) == len(nodes)  # one decision per transition, no extra incident records
    assert [d.action for d in out].count(ActionKind.ROLLBACK_CHANGE) == 1
    assert out[0].action is ActionKind.ROLLBACK_CHANGE
    assert {d.incident_id for d in out} == {out[0].incident_id} and out[0].incident_id
    assert all(d.to_state is NodeState.SUSPECT and not d.held for d in out)
    assert not any(d.action is ActionKind.FLEET_INCIDENT for d in out)


def test_change_incidents_are_per_pool() -> None:
    g, s = Guard(POLICY), GuardState()
    out = []
    for i, pool in enumerate(("a", "b")):
        p = prop(f"n{i}", 10.0 * i, place(i, pool=pool), NodeState.SUSPECT, "change_regression")
        out.extend(g.step(s, p.model_copy(update={"action": ActionKind.ROLLBACK_CHANGE})))
    assert [d.action for d in out] == [ActionKind.ROLLBACK_CHANGE] * 2
    assert out[0].incident_id != out[1].incident_id
