"""A proposal queued for capacity is the node's judgement at the time it asked: once it is older than the
stale cutoff the guard never grants it; the node itself (on its own event time) renews it or withdraws
it, and a withdrawal is retired with a recorded, non-acting decision. The guard never expires a queued
proposal on its own clock: that decision would reach a streaming node at a different point of its input
than an offline one, and streamed decisions must equal offline replay's.

Regression: on the 1,000-node x 24 h run a flapping node's proposal waited behind the pool's concurrency
limit and was released as a quarantine an hour after its fault had ended.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.guard import EXPIRED, Guard, GuardState
from policy.model import Policy, load_policy, parse_policy
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision
from schemas.proposal import Placement, Proposal, Registration
from tests.builders import T0

H, S, Q, E = NodeState.HEALTHY, NodeState.SUSPECT, NodeState.QUARANTINED, NodeState.ESCALATED
POLICY = load_policy().model_copy(
    update={"concurrency": load_policy().concurrency.model_copy(update={"per_pool": 2, "per_sku": 4})}
)
"""A site that allows two nodes of a pool in flight (the shipped default is one)."""
CUTOFF = POLICY.stale_cutoff_s


def _policy(**overrides: object) -> Policy:
    raw = POLICY.model_dump(mode="json")
    raw.update(overrides)
    return parse_policy(raw)


def _place(i: int, pool: str = "p1") -> Placement:
    return Placement(pool=pool, rack=f"r{i}", sku="H100", gpus=8)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(T0 + t, UTC)


def _prop(
    i: int, t: float, to: NodeState = Q, frm: NodeState = S, pool: str = "p1", tag: str = ""
) -> Proposal:
    action = {Q: ActionKind.REBOOT, S: ActionKind.OBSERVE}.get(to, ActionKind.RETURN_TO_SERVICE)
    return Proposal(
        id=f"n{i}:{t}:{to.value}{tag}",
        time=_at(t),
        node=f"n{i}",
        from_state=frm,
        to_state=to,
        trigger="confidence_over_threshold" if to is Q else "test",
        failure_class="node_os",
        confidence=0.73,
        action=action,
        reasons=["kernel.hung_task"],
        evidence=[f"e{i}"],
        evidence_time=_at(t),
        placement=_place(i, pool),
    )


def _fleet(policy: Policy = POLICY, n: int = 100, pools: int = 1) -> tuple[Guard, GuardState]:
    g, s = Guard(policy), GuardState()
    for i in range(n):
        pool = "p1" if pools == 1 else f"p{i % pools}"
        g.step(s, Registration(node=f"n{i}", time=_at(0), placement=_place(i, pool)))
    return g, s


def _pool_full(g: Guard, s: GuardState) -> Decision:
    """n0 and n1 take the pool's two slots (per_pool: 2); n2 is held in the waiting queue at t=20."""
    assert POLICY.concurrency.per_pool == 2
    for i in (0, 1):
        assert g.step(s, _prop(i, 10))[0].to_state is Q
    held = g.step(s, _prop(2, 20))[0]
    assert held.held and "waiting for capacity (concurrency_pool)" in held.reasons[0]
    return held


def _withdraw(i: int, t: float, tag: str = "") -> Proposal:
    """What the node stage sends when its queued proposal outlived the cutoff and its evidence faded."""
    return _prop(i, t, to=S, tag=tag).model_copy(
        update={"id": f"n{i}:{t}:withdraw{tag}", "trigger": EXPIRED, "action": ActionKind.NONE}
    )


def _return(g: Guard, s: GuardState, i: int, t: float) -> list[Decision]:
    return g.step(s, _prop(i, t, to=H, frm=Q))


def _figures(d: Decision, name: str) -> dict[str, object]:
    return dict(next(c for c in d.guard if c.name == name).figures)


def test_capacity_freed_after_the_cutoff_never_grants_the_stale_proposal() -> None:
    g, s = _fleet()
    _pool_full(g, s)
    out = _return(g, s, 0, 20 + CUTOFF + 60)  # n0 leaves: a slot frees an hour-ish too late
    assert [d.node for d in out] == ["n0"]
    assert [p.node for p in s.waiting] == ["n2"] and s.nodes["n2"].state is S


def test_the_node_withdrawing_its_stale_proposal_gets_a_non_acting_expiry() -> None:
    g, s = _fleet()
    _pool_full(g, s)
    _return(g, s, 0, 20 + CUTOFF + 60)
    out = g.step(s, _withdraw(2, 20 + CUTOFF + 90))
    assert [d.node for d in out] == ["n2"]
    expired = out[0]
    assert expired.id == f"d-{_prop(2, 20).id}:{EXPIRED}" and expired.time == _at(20 + CUTOFF + 90)
    assert expired.trigger == EXPIRED and expired.to_state is S and expired.from_state is S
    assert expired.action is ActionKind.NONE and not expired.executable and not expired.held
    assert expired.stale and expired.reasons[0].startswith("expired while waiting")
    assert _figures(expired, "proposal_age") == {"proposal_age_s": CUTOFF + 90, "cutoff_s": CUTOFF}
    assert s.nodes["n2"].state is S and s.waiting == []


def test_capacity_freed_within_the_cutoff_still_releases_the_quarantine() -> None:
    g, s = _fleet()
    _pool_full(g, s)
    out = _return(g, s, 0, 20 + CUTOFF - 60)
    assert [(d.node, d.to_state) for d in out] == [("n0", H), ("n2", Q)]
    assert out[1].reasons[0] == "released: capacity freed"


def test_a_withdrawal_overtaken_by_a_release_is_answered_by_that_release() -> None:
    g, s = _fleet()
    _pool_full(g, s)
    assert [d.node for d in _return(g, s, 0, 20 + CUTOFF - 60)] == ["n0", "n2"]
    assert g.step(s, _withdraw(2, 20 + CUTOFF + 10)) == [] and s.nodes["n2"].state is Q


def test_other_nodes_time_never_expires_a_queued_proposal() -> None:
    g, s = _fleet()
    _pool_full(g, s)
    out = g.step(s, _prop(5, 20 + CUTOFF + 10, to=S, frm=H))
    assert [d.node for d in out] == ["n5"] and [p.node for p in s.waiting] == ["n2"]


def test_a_renewed_proposal_replaces_the_queued_one_and_is_released_on_its_fresh_judgement() -> None:
    g, s = _fleet()
    _pool_full(g, s)
    ask = _prop(2, 20 + CUTOFF + 70, tag="again")
    assert g.step(s, ask)[0].held and [p.id for p in s.waiting] == [ask.id]
    out = _return(g, s, 1, 20 + CUTOFF + 600)
    assert [(d.node, d.to_state) for d in out] == [("n1", H), ("n2", Q)]
    assert out[1].id == f"d-{ask.id}:released"
    # judged as of the renewal (its evidence's time, after the wait began), then 530 s of waiting
    assert _figures(out[1], "stale") == {"evidence_age_s": 0.0, "cutoff_s": CUTOFF, "waited_s": 530.0}


def test_max_wait_still_escalates_a_node_that_keeps_renewing() -> None:
    g, s = _fleet(_policy(max_wait_s=3000))
    _pool_full(g, s)
    assert g.step(s, _prop(2, 1840, tag="again"))[0].held  # the same wait goes on, from t=20
    out = g.step(s, _prop(6, 3100, to=S, frm=H))
    assert [(d.node, d.trigger, d.to_state) for d in out][1] == ("n2", "capacity_wait_expired", E)
    assert out[1].reasons == ["waited 3080s for a slot: needs a person"]


def test_max_wait_still_escalates_a_node_that_asks_again_soon_after_withdrawing() -> None:
    g, s = _fleet(_policy(max_wait_s=3000))
    _pool_full(g, s)
    assert g.step(s, _withdraw(2, 1830))[0].trigger == EXPIRED
    assert g.step(s, _prop(2, 1840, tag="again"))[0].held  # the same wait goes on, from t=20
    out = g.step(s, _prop(6, 3100, to=S, frm=H))
    assert [(d.node, d.trigger, d.to_state) for d in out][1] == ("n2", "capacity_wait_expired", E)


def test_an_ask_long_after_a_withdrawal_starts_a_new_wait() -> None:
    g, s = _fleet(_policy(max_wait_s=3000))
    _pool_full(g, s)
    assert g.step(s, _withdraw(2, 1830))[0].trigger == EXPIRED
    t = 1830 + CUTOFF + 100  # the node came back long after its last ask: not the same wait
    assert g.step(s, _prop(2, t, tag="later"))[0].held
    out = g.step(s, _prop(6, t + 100, to=S, frm=H))
    assert [d.node for d in out] == ["n6"] and len(s.waiting) == 1


def test_breaker_backlog_resumed_after_the_cutoff_is_not_quarantined_but_left_to_its_node() -> None:
    g, s = _fleet(n=40, pools=4)  # 3 quarantines in 40 nodes trip the 5% breaker
    granted = [g.step(s, _prop(i, 10 + i, pool=f"p{i}"))[0] for i in range(3)]
    assert [d.to_state for d in granted[:2]] == [Q, Q] and granted[2].held
    g.step(s, _prop(7, 10 + CUTOFF + 100, to=S, frm=H, pool="p3"))  # time passes while the breaker is open
    reset = ControlMessage(
        id="c-reset",
        time=_at(10 + CUTOFF + 120),
        kind=ControlKind.BREAKER_RESET,
        scope="global",
        value={"backlog": "resume"},
        actor="alice",
    )
    assert g.step(s, reset) == [] and [p.node for p in s.waiting] == ["n2"]
    withdrawal = _withdraw(2, 10 + CUTOFF + 130).model_copy(update={"placement": _place(2, "p2")})
    out = g.step(s, withdrawal)
    assert [(d.node, d.trigger, d.to_state) for d in out] == [("n2", EXPIRED, S)] and s.waiting == []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(["q", "q", "h", "w"]), st.sampled_from([0, 300, 1200])),
        min_size=1,
        max_size=40,
    )
)
def test_no_quarantine_is_ever_granted_on_a_proposal_older_than_the_cutoff(
    ops: list[tuple[int, str, int]],
) -> None:
    g, s = _fleet()  # three of 100 nodes compete for the pool's two slots
    asked: dict[str, float] = {}
    t = 0.0
    for k, (i, op, dt) in enumerate(ops):
        t += dt
        cur = s.nodes[f"n{i}"].state
        p = {
            "q": _prop(i, t, tag=str(k)),
            "h": _prop(i, t, to=H, frm=cur, tag=str(k)),
            "w": _withdraw(i, t, tag=str(k)),
        }[op]
        asked[p.id] = t
        for d in g.step(s, p.model_copy(update={"from_state": cur})):
            if d.to_state is Q and d.trigger != EXPIRED:  # an expiry moves nothing
                pid = d.id.removeprefix("d-").removesuffix(":released")
                assert d.time.timestamp() - (T0 + asked[pid]) <= CUTOFF, d.id


def test_evidence_that_was_fresh_when_its_node_asked_is_not_stale_when_the_slot_frees() -> None:
    """A GPU off the bus raises its Xid once: the node renews its proposal on the same evidence while
    the guard makes it wait. Judged at release, that evidence was past the cutoff and the quarantine was
    recorded stale, so nothing repaired the node and it held its pool's slot for good (the 1,000-node
    x 24 h score, seed 3). It is judged as of the node's first ask."""
    g, s = _fleet()
    _pool_full(g, s)  # n2 asks at t=20 with evidence from t=20
    later = 20 + CUTOFF + 70
    renewal = _prop(2, later, tag="again").model_copy(update={"evidence_time": _at(20)})
    assert g.step(s, renewal)[0].held
    out = _return(g, s, 1, later + 30)
    released = out[1]
    assert (released.node, released.to_state, released.stale) == ("n2", Q, False)
    figures = {"evidence_age_s": 0.0, "cutoff_s": CUTOFF, "waited_s": CUTOFF + 100}
    assert _figures(released, "stale") == figures


def test_evidence_already_stale_when_its_node_asked_stays_stale_on_release() -> None:
    g, s = _fleet()
    for i in (0, 1):
        assert g.step(s, _prop(i, 10))[0].to_state is Q
    late = _prop(3, 30).model_copy(update={"evidence_time": _at(30 - CUTOFF - 60)})  # arrived an hour late
    assert g.step(s, late)[0].held
    out = _return(g, s, 1, 40)
    released = next(d for d in out if d.node == "n3")
    assert released.stale and not released.executable
    assert _figures(released, "stale")["evidence_age_s"] == CUTOFF + 60
