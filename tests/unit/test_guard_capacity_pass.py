"""The guard's concurrency and headroom figures, computed in one pass over the fleet, equal their
definitions (counted one scope at a time) on random fleets."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from policy.guard import Guard, GuardState, NodeInfo
from policy.lifecycle import IN_FLIGHT
from policy.model import load_policy
from schemas.common import NodeState
from schemas.proposal import Proposal
from tests.fixtures.proposals import random_placement, xid79_proposal


def _definitions(g: GuardState, p: Proposal) -> dict[str, int]:
    """Each figure straight from its definition (what the guard computed before, scope by scope)."""
    pl, others = p.placement, [(n, i) for n, i in g.nodes.items() if n != p.node]
    out = {
        f"concurrency_{key}": sum(
            1 for _, i in others if i.state in IN_FLIGHT and getattr(i.placement, key) == getattr(pl, key)
        )
        for key in ("rack", "pool", "sku")
    }
    out["pool_gpus"] = sum(i.placement.gpus for i in g.nodes.values() if i.placement.pool == pl.pool)
    out["out_of_service_gpus"] = sum(
        i.placement.gpus
        for _, i in others
        if i.placement.pool == pl.pool and (i.state in IN_FLIGHT or i.state is NodeState.ESCALATED)
    )
    return out


def test_one_pass_figures_equal_their_definitions_on_random_fleets() -> None:
    rng = random.Random(7)
    guard = Guard(load_policy(None))
    states = list(NodeState)
    for _ in range(200):
        g = GuardState()
        for k in range(rng.randrange(1, 60)):
            g.nodes[f"n{k}"] = NodeInfo(random_placement(rng), rng.choice(states))
        node = rng.choice([*g.nodes, "newcomer"])
        placement = g.nodes[node].placement if node in g.nodes else random_placement(rng)
        p = xid79_proposal(node, datetime(2025, 1, 1, tzinfo=UTC), 0, placement)
        checks = {c.name: c.figures for c in guard._capacity_checks(g, p)}
        want = _definitions(g, p)
        got = {f"concurrency_{k}": checks[f"concurrency_{k}"]["in_flight"] for k in ("rack", "pool", "sku")}
        got |= {k: checks["headroom"][k] for k in ("pool_gpus", "out_of_service_gpus")}
        assert got == want
