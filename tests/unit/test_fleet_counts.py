"""Fleet figures kept up to date move by move equal a fresh scan, and a guard that keeps them across
a drain decides exactly what a guard that rescans the fleet for every check decides."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.fleet_counts import FleetCounts
from policy.guard import Guard, GuardState, NodeInfo
from policy.model import load_policy, parse_policy
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision, GuardCheck
from schemas.proposal import Placement, Proposal, Registration
from tests.fixtures.proposals import random_placement, xid79_proposal

T0 = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
_raw = load_policy().model_dump(mode="json")
_raw["modes"]["classes"] = {"gpu_hardware": "auto"}
_raw["concurrency"] |= {"per_rack": 1, "per_pool": 5, "per_sku": 6}
_raw["headroom"]["default_min_healthy_fraction"] = 0.6
_raw["breaker"] |= {"max_nodes": 4, "min_nodes_for_fraction": 1000}
_raw["max_wait_s"] = 300
_raw["blast_radius"]["scopes"] = {"rack": 1000}
AUTO = parse_policy(_raw)


def _same(a: FleetCounts, b: FleetCounts) -> bool:
    """Equal figures (a Counter keeps keys that fell back to zero; they count as absent)."""
    return (
        +a.pool_gpus == +b.pool_gpus
        and +a.out_gpus == +b.out_gpus
        and all(+a.in_flight[s] == +b.in_flight[s] for s in a.in_flight)
        and all(+a.validating[s] == +b.validating[s] for s in a.validating)
    )


def test_moves_keep_the_figures_equal_to_a_fresh_scan() -> None:
    rng = random.Random(11)
    states = list(NodeState)
    for _ in range(100):
        nodes = {
            f"n{k}": NodeInfo(random_placement(rng), rng.choice(states)) for k in range(rng.randrange(1, 40))
        }
        counts = FleetCounts.scan(nodes)
        for _ in range(30):
            info = nodes[rng.choice(list(nodes))]
            new = rng.choice(states)
            counts.move(info.placement, info.state, new)
            info.state = new
            assert _same(counts, FleetCounts.scan(nodes))


class RescanningGuard(Guard):
    """The guard as it was: every capacity check counts the whole fleet afresh."""

    def _capacity_checks(self, g: GuardState, p: Proposal) -> list[GuardCheck]:
        g.counts = None
        return super()._capacity_checks(g, p)


def _storm(ops: list[tuple[int, str]]) -> list[Proposal | Registration | ControlMessage]:
    """Quarantines competing for few slots, repairs finishing, escalations, a breaker reset: a drain
    then releases several waiting proposals in one step."""
    items: list[Proposal | Registration | ControlMessage] = []
    placements = {i: Placement(pool=f"p{i % 2}", rack=f"r{i % 4}", sku=("H100", "H200")[i % 3 == 0], gpus=8)
                  for i in range(24)}  # fmt: skip
    t0 = datetime.fromtimestamp(T0, UTC)
    items += [Registration(node=f"n{i}", time=t0, placement=pl) for i, pl in placements.items()]
    for k, (i, op) in enumerate(ops):
        t = datetime.fromtimestamp(T0 + 20 * k, UTC)
        p = xid79_proposal(f"n{i}", t, k, placements[i]).model_copy(update={"id": f"n{i}:{k}:{op}"})
        if op == "move":  # re-registered elsewhere (a node moved to another rack and pool)
            moved = Placement(pool=f"p{(i + 1) % 2}", rack=f"r{(i + k) % 4}", sku="H100", gpus=4)
            items.append(Registration(node=f"n{i}", time=t, placement=moved))
            placements[i] = moved
            continue
        if op == "reset":
            items.append(
                ControlMessage(
                    id=f"c{k}", time=t, kind=ControlKind.BREAKER_RESET, scope="global", actor="sre"
                )
            )
            continue
        if op != "q":
            to = {
                "h": NodeState.HEALTHY,
                "e": NodeState.ESCALATED,
                "r": NodeState.REPAIRING,
                "v": NodeState.VALIDATING,
            }[op]
            p = p.model_copy(update={"to_state": to, "action": ActionKind.RETURN_TO_SERVICE})
        items.append(p)
    return items


def _run(guard: Guard, items: list[Proposal | Registration | ControlMessage]) -> list[Decision]:
    g, out = GuardState(), []
    for item in items:
        if isinstance(item, Proposal):
            item = item.model_copy(update={"from_state": g.nodes[item.node].state})
        out += guard.step(g, item)
        assert g.counts is None or _same(g.counts, FleetCounts.scan(g.nodes)), f"after {item}"
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 23), st.sampled_from(["q", "q", "q", "h", "h", "e", "r", "v", "move", "reset"])
        ),
        max_size=80,
    )
)
def test_a_drain_with_kept_figures_decides_what_rescanning_decides(ops: list[tuple[int, str]]) -> None:
    items = _storm(ops)
    kept, rescanned = _run(Guard(AUTO), items), _run(RescanningGuard(AUTO), items)
    assert [d.model_dump() for d in kept] == [d.model_dump() for d in rescanned]


def test_a_breaker_reset_releases_one_per_free_rack_in_one_step() -> None:
    """Four racks free up while the breaker holds eight proposals: the reset releases four in one step
    and refuses the rest, because each release fills its rack for the checks after it."""
    ops = [(i, "q") for i in range(12)] + [(i, "h") for i in range(4)] + [(0, "reset")]
    decisions = _run(Guard(AUTO), _storm(ops))
    assert [d.model_dump() for d in decisions] == [
        d.model_dump() for d in _run(RescanningGuard(AUTO), _storm(ops))
    ]
    released = [d for d in decisions if d.id.endswith(":released")]
    assert [d.node for d in released] == ["n4", "n5", "n6", "n7"]
    assert len({d.time for d in released}) == 1


def test_a_node_moved_while_in_flight_takes_its_slot_along() -> None:
    """n0 is quarantined in rack r0, then re-registered in r1: r0 has a free slot again, r1 none."""
    ops = [(0, "q"), (0, "move"), (4, "q"), (5, "q")]
    decisions = _run(Guard(AUTO), _storm(ops))
    assert [d.model_dump() for d in decisions] == [
        d.model_dump() for d in _run(RescanningGuard(AUTO), _storm(ops))
    ]
    by_node = {d.node: d for d in decisions}
    assert by_node["n4"].to_state is NodeState.QUARANTINED  # r0: freed by the move
    assert by_node["n5"].held  # r1: n0 is in flight there now
