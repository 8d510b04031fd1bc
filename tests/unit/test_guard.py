"""Each guardrail blocks what it must and allows what it may, with figures in the decision."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.guard import Guard, GuardState
from policy.invariants import check as check_invariants
from policy.lifecycle import IN_FLIGHT, JOB_FAULT
from policy.model import load_policy, parse_policy
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision
from schemas.proposal import Placement, Proposal, Registration
from tests.builders import T0

_raw = load_policy().model_dump(mode="json")
_raw["modes"]["classes"] = {"gpu_hardware": "auto"}
_raw["concurrency"] |= {"per_pool": 2, "per_sku": 4}  # a site looser than the shipped one-per-scope
AUTO = parse_policy(_raw)


def place(node: int, rack: str = "r1", pool: str = "p1", **labels: str) -> Placement:
    return Placement(pool=pool, rack=rack, sku="H100", gpus=8, labels=dict(labels))


def prop(
    node: str,
    t: float,
    pl: Placement,
    to: NodeState = NodeState.QUARANTINED,
    cls: str = "gpu_hardware",
    action: ActionKind = ActionKind.REBOOT,
    ev_age: float = 0.0,
    job: str | None = None,
    replay: bool = False,
) -> Proposal:
    return Proposal(
        id=f"{node}:{t}",
        time=datetime.fromtimestamp(T0 + t, UTC),
        node=node,
        from_state=NodeState.SUSPECT,
        to_state=to,
        trigger="confidence_over_threshold",
        failure_class=cls,
        confidence=0.9,
        action=action,
        reasons=["test"],
        evidence=["e1"],
        evidence_time=datetime.fromtimestamp(T0 + t - ev_age, UTC),
        placement=pl,
        job=job,
        replay=replay,
    )


def fleet(n: int, racks: int = 10, pools: int = 1, policy=AUTO) -> tuple[Guard, GuardState]:  # type: ignore[no-untyped-def]
    g, s = Guard(policy), GuardState()
    for i in range(n):
        pl = place(i, f"r{i % racks}", pool="p1" if pools == 1 else f"p{i % pools}")
        g.step(s, Registration(node=f"n{i}", time=datetime.fromtimestamp(T0, UTC), placement=pl))
    return g, s


def check(d: Decision, name: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in d.guard if c.name == name).figures


def ctl(kind: ControlKind, scope: str = "global", **value: object) -> ControlMessage:
    return ControlMessage(
        id=f"c-{kind}-{scope}",
        time=datetime.fromtimestamp(T0, UTC),
        kind=kind,
        scope=scope,
        value=dict(value),
        actor="alice",
    )


def test_two_proposals_for_one_rack_in_the_same_step_one_goes_one_waits() -> None:
    g, s = fleet(40)
    a = g.step(s, prop("n0", 10, place(0, "r0")))[0]
    b = g.step(s, prop("n10", 10, place(10, "r0")))[0]
    assert a.executable and a.to_state is NodeState.QUARANTINED
    assert b.held and not b.executable and b.to_state is NodeState.SUSPECT
    assert check(b, "concurrency_rack") == {"in_flight": 1, "limit": 1, "emergency": False}
    # when n0 returns, n10 is released from the queue
    back = prop("n0", 20, place(0, "r0"), to=NodeState.HEALTHY, action=ActionKind.RETURN_TO_SERVICE)
    back = back.model_copy(update={"from_state": NodeState.QUARANTINED})
    out = g.step(s, back)
    assert [d.node for d in out] == ["n0", "n10"] and out[1].to_state is NodeState.QUARANTINED


def test_headroom_at_the_minimum_no_drain() -> None:
    g, s = fleet(6, racks=6)
    s.nodes["n1"].state = NodeState.ESCALATED  # 8 of 48 GPUs already out; min healthy 85% = 40.8
    d = g.step(s, prop("n0", 10, place(0, "r0")))[0]
    assert d.held and not d.executable
    assert check(d, "headroom")["healthy_after"] == 32 and check(d, "headroom")["min_healthy"] == 40.8


def test_breaker_tripped_blocks_new_quarantines_but_returns_still_flow() -> None:
    g, s = fleet(40, racks=40, pools=4)
    out = [g.step(s, prop(f"n{i}", 10 + i, place(i, f"r{i}", pool=f"p{i}")))[0] for i in range(3)]
    assert [d.executable for d in out[:2]] == [True, True]
    assert out[2].held and check(out[2], "breaker")["open"] is True
    back = prop(
        "n0", 30, place(0, "r0", pool="p0"), to=NodeState.HEALTHY, action=ActionKind.RETURN_TO_SERVICE
    )
    d = g.step(s, back.model_copy(update={"from_state": NodeState.QUARANTINED}))[0]
    assert d.executable and d.to_state is NodeState.HEALTHY
    resumed = g.step(s, ctl(ControlKind.BREAKER_RESET, backlog="resume"))
    assert [x.node for x in resumed] == ["n2"] and resumed[0].to_state is NodeState.QUARANTINED


def test_approval_missing_means_recommend_never_execute() -> None:
    g, s = fleet(40)
    d = g.step(s, prop("n0", 10, place(0, "r0"), action=ActionKind.RMA))[0]
    assert not d.executable and check(d, "approval") == {"required": True, "approved": False}
    g.step(s, ctl(ControlKind.APPROVAL, "node:n1", action="rma"))
    d2 = g.step(s, prop("n1", 11, place(1, "r1"), action=ActionKind.RMA))[0]
    assert d2.executable


def test_kill_switch_means_nothing_executes() -> None:
    g, s = fleet(40)
    g.step(s, ctl(ControlKind.KILLSWITCH, "pool:p1", on=True))
    d = g.step(s, prop("n0", 10, place(0, "r0")))[0]
    assert not d.executable and check(d, "killswitch") == {"engaged": "pool:p1"}


def test_stale_evidence_is_recorded_not_executed() -> None:
    g, s = fleet(40)
    d = g.step(s, prop("n0", 4000, place(0, "r0"), ev_age=3600))[0]
    assert d.stale and not d.executable and d.to_state is NodeState.QUARANTINED


def test_excluded_pool_gets_recommendations_only() -> None:
    g, s = fleet(40)
    d = g.step(s, prop("n0", 10, place(0, "r0", **{"breakfix.io/exclude": "true"})))[0]
    assert not d.executable and d.mode.value == "recommend"


def test_replayed_input_is_never_executable() -> None:
    g, s = fleet(40)
    d = g.step(s, prop("n0", 10, place(0, "r0"), replay=True))[0]
    assert d.replay and not d.executable


def test_77_nodes_over_11_racks_with_xid45_within_minutes_one_incident_zero_quarantines() -> None:
    """A job's teardown storm is one job-level finding: every node reports it, no node moves, nothing
    executes, and no fleet incident is counted from it."""
    g, s = fleet(77, racks=11)
    out = []
    for i in range(77):
        p = prop(
            f"n{i}",
            5 * i,
            place(i, f"r{i % 11}"),
            to=NodeState.HEALTHY,
            cls="workload_symptom",
            action=ActionKind.OBSERVE,
            job="llm-teardown",
        )
        out += g.step(s, p.model_copy(update={"from_state": NodeState.HEALTHY, "trigger": JOB_FAULT}))
    assert len(out) == 77 and len({d.incident_id for d in out}) == 1
    assert out[0].reasons[0].startswith("opens job finding") and "part of job finding" in out[1].reasons[0]
    assert all(d.from_state is d.to_state is NodeState.HEALTHY and not d.executable for d in out)
    assert not [d for d in out if d.action is ActionKind.FLEET_INCIDENT]


LOOSE = parse_policy(_raw | {"concurrency": {"per_rack": 1, "per_pool": 20, "per_sku": 20}})
"""Room for many nodes in flight, so only the blast radius holds anything."""


def _q(node: str, t: float, i: int, signal: str, decisive: bool, cls: str = "gpu_memory") -> Proposal:
    p = prop(node, t, place(i, f"r{i}"), cls=cls, action=ActionKind.GPU_RESET)
    trigger = "decisive_signal" if decisive else "confidence_over_threshold"
    return p.model_copy(update={"signal": signal, "decisive": decisive, "trigger": trigger})


def test_a_suspect_storm_opens_no_incident() -> None:
    """Being worth a look is not acting: 40 nodes turning Suspect on one signal count for nothing."""
    g, s = fleet(60, racks=60, policy=load_policy())
    out = []
    for i in range(40):
        p = _q(f"n{i}", 5 * i, i, "sbe_rate", False).model_copy(
            update={"to_state": NodeState.SUSPECT, "trigger": "evidence_rising", "action": ActionKind.OBSERVE,
                    "from_state": NodeState.HEALTHY}
        )  # fmt: skip
        out += g.step(s, p)
    assert not [d for d in out if d.action is ActionKind.FLEET_INCIDENT] and not s.incidents


def test_a_storm_freezes_its_own_signal_never_a_decisive_fault_of_another() -> None:
    """Five nodes that would each be quarantined for contained ECC errors (Xid 94) in one pool open an
    incident; a sixth is frozen and told which nodes opened it; a DBE with a pending row remap (decisive,
    another signal) on a node of the same pool is still quarantined."""
    g, s = fleet(200, racks=200, policy=LOOSE)
    out = []
    for i in range(5):
        out += g.step(s, _q(f"n{i}", 10 * i, i, "xid.94", False))
    incidents = [d for d in out if d.action is ActionKind.FLEET_INCIDENT]
    assert len(incidents) == 1 and incidents[0].reasons[1] == "nodes: n0, n1, n2, n3, n4"
    sixth = g.step(s, _q("n5", 60, 5, "xid.94", False))[0]
    assert sixth.held and sixth.incident_id == incidents[0].incident_id
    assert "the same signal (xid.94) on n0, n1, n2, n3, n4" in sixth.reasons[0]
    dbe = g.step(s, _q("n6", 70, 6, "dbe", True))[0]
    assert dbe.to_state is NodeState.QUARANTINED and not dbe.held


def test_a_storm_of_the_same_decisive_signal_is_an_incident_as_designed() -> None:
    g, s = fleet(200, racks=200, policy=LOOSE)
    for i in range(5):
        g.step(s, _q(f"n{i}", 10 * i, i, "xid.79", True, "gpu_hardware"))
    sixth = g.step(s, _q("n5", 60, 5, "xid.79", True, "gpu_hardware"))[0]
    assert sixth.held and sixth.incident_id is not None
    other = g.step(s, _q("n6", 70, 6, "xid.95", True))[0]
    assert other.to_state is NodeState.QUARANTINED


def test_a_redelivered_proposal_gets_no_second_decision() -> None:
    g, s = fleet(40)
    p = prop("n0", 10, place(0, "r0"))
    assert len(g.step(s, p)) == 1 and g.step(s, p) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 29), st.sampled_from(["q", "h", "e"])), max_size=60))
def test_no_sequence_drains_below_headroom_or_puts_two_of_a_rack_in_flight(
    ops: list[tuple[int, str]],
) -> None:
    g, s = fleet(30, racks=5)
    for k, (i, op) in enumerate(ops):
        pl = place(i, f"r{i % 5}")
        cur = s.nodes[f"n{i}"].state
        if op == "q":
            p = prop(f"n{i}", k, pl)
        else:
            to = NodeState.HEALTHY if op == "h" else NodeState.ESCALATED
            p = prop(f"n{i}", k, pl, to=to, action=ActionKind.RETURN_TO_SERVICE)
        g.step(s, p.model_copy(update={"from_state": cur, "id": f"n{i}:{k}:{op}"}))
        for rack in {f"r{j}" for j in range(5)}:
            assert sum(1 for n in s.nodes.values() if n.placement.rack == rack and n.state in IN_FLIGHT) <= 1
        out = sum(n.placement.gpus for n in s.nodes.values() if n.state in IN_FLIGHT)
        escalated = sum(n.placement.gpus for n in s.nodes.values() if n.state is NodeState.ESCALATED)
        # Quarantines granted by the guard never push the pool below its minimum (escalations are human).
        assert out == 0 or 240 - out - escalated >= 0.85 * 240 or escalated > 0.15 * 240 - 8


def test_shipped_default_is_one_node_in_flight_per_pool_and_the_second_fault_says_whom_it_waits_for() -> None:
    """The stated guardrail: one node in flight per rack, pool and SKU unless emergency mode. A second
    fault in the pool waits, its decision names the node holding the slot, and it is released when that
    node returns to service."""
    shipped = load_policy()
    assert (shipped.concurrency.per_rack, shipped.concurrency.per_pool, shipped.concurrency.per_sku) == (
        1,
        1,
        1,
    )
    g, s = fleet(40, policy=shipped)
    first = g.step(s, prop("n0", 10, place(0, "r0")))[0]
    assert first.to_state is NodeState.QUARANTINED and not first.held
    second = g.step(s, prop("n1", 11, place(1, "r1")))[0]
    assert second.held and second.to_state is NodeState.SUSPECT
    assert second.reasons[0].startswith(
        "waiting for capacity (concurrency_pool, concurrency_sku): in flight n0"
    )
    assert check(second, "concurrency_pool") == {"in_flight": 1, "limit": 1, "emergency": False}
    back = prop("n0", 900, place(0, "r0"), to=NodeState.HEALTHY, action=ActionKind.RETURN_TO_SERVICE)
    back = back.model_copy(update={"from_state": NodeState.QUARANTINED, "trigger": "cleared_without_action"})
    out = g.step(s, back)
    released = [d for d in out if d.node == "n1"]
    assert len(released) == 1 and released[0].to_state is NodeState.QUARANTINED
    assert released[0].reasons[0] == "released: capacity freed"


def test_emergency_mode_lifts_the_one_in_flight_limit() -> None:
    g, s = fleet(40, policy=load_policy())
    g.step(s, ctl(ControlKind.EMERGENCY, "global", on=True))
    out = [g.step(s, prop(f"n{i}", 10 + i, place(i, f"r{i}")))[0] for i in range(2)]
    assert [d.held for d in out] == [False, False]


def test_the_looser_example_site_policy_differs_from_the_shipped_one_only_in_concurrency() -> None:
    """policy/examples/looser-concurrency.yaml is what `score` comparisons run against: it must not
    drift from the shipped policy in anything but the setting it exists to compare."""
    from pathlib import Path

    shipped = load_policy().model_dump(mode="json")
    loose = load_policy(Path(__file__).resolve().parents[2] / "policy/examples/looser-concurrency.yaml")
    other = loose.model_dump(mode="json")
    assert (loose.concurrency.per_pool, loose.concurrency.per_sku) == (2, 4)
    for key in ("concurrency", "version"):
        shipped.pop(key), other.pop(key)
    assert other == shipped


def test_headroom_counts_capacity_already_lost_as_removed() -> None:
    """A pool of 10 nodes (80 GPUs) keeps 85% (68) in service. One node is NotReady (its proposal says it
    has lost all 8 GPUs): quarantining another would leave 64 in service, below the minimum, so it
    waits; without the NotReady node it would have gone ahead (72). The lost GPUs survive a snapshot."""
    from policy.guard_record import decode, encode

    g, s = fleet(10, racks=10, policy=LOOSE)
    down = prop("n0", 10, place(0, "r0"), to=NodeState.SUSPECT, action=ActionKind.OBSERVE)
    down = down.model_copy(
        update={"from_state": NodeState.HEALTHY, "trigger": "evidence_rising", "lost_gpus": 8}
    )
    assert g.step(s, down)[0].to_state is NodeState.SUSPECT and s.lost == {"n0": 8}
    assert decode(encode(s)).lost == {"n0": 8}
    held = g.step(s, prop("n1", 20, place(1, "r1")))[0]
    assert (
        held.held
        and check(held, "headroom")["lost_gpus"] == 8
        and check(held, "headroom")["healthy_after"] == 64
    )
    g2, s2 = fleet(10, racks=10, policy=LOOSE)
    assert not g2.step(s2, prop("n1", 20, place(1, "r1")))[0].held


def _move(
    g: Guard, s: GuardState, i: int, t: float, to: NodeState, action: ActionKind, trigger: str
) -> Decision:
    """Node ``n{i}`` (rack ``r{i}``) moves on along its lifecycle, as its node stage proposes."""
    p = prop(f"n{i}", t, place(i, f"r{i}"), to=to, action=action)
    p = p.model_copy(
        update={"from_state": s.nodes[f"n{i}"].state, "trigger": trigger, "id": f"n{i}:{t}:{to}"}
    )
    return g.step(s, p)[0]


def _validating(g: Guard, s: GuardState, i: int, t: float) -> None:
    """n{i} quarantined for a GPU reset, repaired, and now Validating (where a lingering flag can keep it)."""
    assert not g.step(s, _q(f"n{i}", t, i, "dbe", True))[0].held
    _move(g, s, i, t + 1, NodeState.REPAIRING, ActionKind.NONE, "repair_started")
    _move(g, s, i, t + 2, NodeState.VALIDATING, ActionKind.VALIDATE, "repair_completed")
    assert s.nodes[f"n{i}"].state is NodeState.VALIDATING


def test_a_decisive_fault_is_not_held_behind_a_validating_node_but_a_weaker_one_is() -> None:
    """The shipped one-per-pool default. n0's repair is over and it validates (a lingering row-remap
    flag kept such a node there ~2 h in a 500-node score, while two GPUs of its pool that had fallen
    off the bus waited until max_wait_s escalated them). A GPU off the bus in the pool is quarantined
    at once, the concurrency figures saying what they left aside; a sustained SBE rate still waits."""
    g, s = fleet(100, racks=100, policy=load_policy())
    _validating(g, s, 0, 10)
    bus = g.step(s, _q("n1", 100, 1, "xid.79", True, "gpu_hardware"))[0]
    assert bus.to_state is NodeState.QUARANTINED and not bus.held
    assert check(bus, "concurrency_pool") == {
        "in_flight": 0, "limit": 1, "emergency": False, "validating_or_ticket": 1
    }  # fmt: skip
    sbe = g.step(s, _q("n2", 110, 2, "sbe_rate", False))[0]
    assert sbe.held and "in flight n0 (pool p1, Validating)" in sbe.reasons[0]
    # n1 is being repaired now: a second decisive fault of the pool waits for it, naming it only.
    dbe = g.step(s, _q("n3", 120, 3, "dbe", True))[0]
    assert dbe.held and check(dbe, "concurrency_pool")["in_flight"] == 1
    assert "in flight n1 (pool p1, Quarantined)" in dbe.reasons[0] and "n0" not in dbe.reasons[0]


def test_a_validating_node_keeps_its_racks_slot_even_against_a_decisive_fault() -> None:
    """Validation's burn-in loads the rack's power and NVLink domain: the rack limit stands."""
    g, s = fleet(100, racks=100, policy=load_policy())
    _validating(g, s, 0, 10)
    same_rack = _q("n7", 100, 7, "xid.79", True, "gpu_hardware").model_copy(
        update={"placement": place(7, "r0")}
    )
    d = g.step(s, same_rack)[0]
    assert d.held and "in flight n0 (rack r0, Validating)" in d.reasons[0]
    assert not check(d, "concurrency_rack").get("validating_or_ticket")


def test_a_decisive_fault_takes_the_slot_of_a_quarantine_waiting_on_a_person() -> None:
    """A tenant-reported node is Quarantined for a ticket until its repair status comes back: nothing of
    the product's runs on it. A DBE with its row remap pending in the pool is quarantined meanwhile; a
    thermal fault is not. The parked node survives a snapshot of the guard's state."""
    from policy.guard_record import decode, encode

    g, s = fleet(100, racks=100, policy=load_policy())
    tenant = _move(g, s, 0, 10, NodeState.QUARANTINED, ActionKind.TICKET, "tenant_reported_issue")
    assert tenant.to_state is NodeState.QUARANTINED and s.parked == {"n0"}
    assert decode(encode(s)).parked == {"n0"}
    thermal = g.step(s, _q("n1", 20, 1, "temp_high", False, "thermal_power"))[0]
    assert thermal.held
    same_rack = _q("n2", 30, 2, "dbe", True).model_copy(update={"placement": place(2, "r0")})
    dbe = g.step(s, same_rack)[0]
    assert dbe.to_state is NodeState.QUARANTINED and not dbe.held
    assert check(dbe, "concurrency_rack")["validating_or_ticket"] == 1
    # The auditor's invariants, re-derived from the log alone, agree: no rack holds two in flight.
    log = [tenant, thermal, dbe]
    placements = {n: info.placement for n, info in s.nodes.items()}
    assert check_invariants(log, placements, load_policy().min_healthy_fraction) == []
    # The tenant's repair comes back: n0 validates; nothing is parked any more.
    _move(g, s, 0, 40, NodeState.VALIDATING, ActionKind.VALIDATE, "repair_reported_completed")
    assert s.parked == set()


def test_a_decisive_fault_skips_no_headroom() -> None:
    """Slots left aside, the pool's headroom still decides: 14 nodes (112 GPUs) keep 85% (95.2). With
    two nodes validating, a third fallen off the bus would leave 88: it waits, on headroom alone."""
    g, s = fleet(14, racks=14, policy=load_policy())
    _validating(g, s, 0, 10)
    _validating(g, s, 1, 100)
    d = g.step(s, _q("n2", 200, 2, "xid.79", True, "gpu_hardware"))[0]
    assert d.held and d.to_state is NodeState.SUSPECT
    assert check(d, "concurrency_pool")["in_flight"] == 0
    assert check(d, "headroom")["healthy_after"] == 88 and "headroom" in d.reasons[0]


def test_a_waiting_decisive_fault_is_released_before_an_earlier_weaker_one() -> None:
    """An SBE rate and then a GPU off the bus wait for n0's repair; when n0 returns, the GPU off the bus
    gets the slot although it asked second (a renewal moves a proposal to the back of the queue)."""
    g, s = fleet(100, racks=100, policy=load_policy())
    assert not g.step(s, prop("n0", 10, place(0, "r0")))[0].held  # a reboot, not decisive
    assert g.step(s, _q("n1", 20, 1, "sbe_rate", False))[0].held
    assert g.step(s, _q("n2", 30, 2, "xid.79", True, "gpu_hardware"))[0].held
    out = _move(g, s, 0, 40, NodeState.HEALTHY, ActionKind.RETURN_TO_SERVICE, "cleared_without_action")
    assert out.node == "n0"
    assert s.nodes["n2"].state is NodeState.QUARANTINED and s.nodes["n1"].state is NodeState.SUSPECT
