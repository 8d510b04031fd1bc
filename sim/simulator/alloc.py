"""Which nodes each injected fault lands on: deterministic, and never two faults on one node.

Overlapping faults would make ground truth ambiguous (is the quarantine for the Xid 79 or for the
storm?), so every node is claimed at most once. Draws are hashed from (seed, fault key), so adding a
scenario does not move the nodes another scenario picked.
"""

from __future__ import annotations

from sim.simulator.fleet import Fleet, Node
from sim.simulator.rand import shuffled


class AllocationError(ValueError):
    """The fleet is too small (or too claimed) for a scenario entry; the message says which."""


class Allocator:
    def __init__(self, fleet: Fleet, seed: int) -> None:
        self.fleet = fleet
        self.seed = seed
        self.claimed: dict[int, str] = {}

    def _free(self, nodes: list[Node]) -> list[Node]:
        return [n for n in nodes if n.index not in self.claimed]

    def _claim(self, nodes: list[Node], key: str) -> list[Node]:
        for n in nodes:
            self.claimed[n.index] = key
        return nodes

    def pool_nodes(self, pool: str | None) -> list[Node]:
        if pool is None:
            return self.fleet.nodes
        nodes = self.fleet.in_pool(pool)
        if not nodes:
            raise AllocationError(f"pool {pool!r} has no nodes (pools: {', '.join(self.fleet.pools())})")
        return nodes

    def nodes(self, key: str, count: int, pool: str | None = None) -> list[Node]:
        free = self._free(self.pool_nodes(pool))
        if len(free) < count:
            raise AllocationError(
                f"{key}: needs {count} free node(s) in {pool or 'the fleet'}, {len(free)} left; "
                "use more --nodes"
            )
        return self._claim(shuffled(self.seed, free, key)[:count], key)

    def whole_pool(self, key: str, pool: str) -> list[Node]:
        """Every still-free node of the pool (a pool-wide change touches all of them)."""
        free = self._free(self.pool_nodes(pool))
        if not free:
            raise AllocationError(f"{key}: pool {pool!r} has no free nodes left")
        return self._claim(free, key)

    def leaf(self, key: str, pool: str | None, leaf: str | None) -> tuple[str, list[Node]]:
        """All nodes behind one leaf switch that no other fault has claimed."""
        leaves = self.fleet.leaves()
        if leaf is not None:
            if leaf not in leaves:
                raise AllocationError(f"{key}: no leaf {leaf!r} in a fleet of {len(self.fleet.nodes)} nodes")
            candidates = [leaf]
        else:
            candidates = [
                name
                for name, members in sorted(leaves.items())
                if (pool is None or members[0].pool == pool) and len(self._free(members)) == len(members)
            ]
            candidates = shuffled(self.seed, candidates, key)
        for name in candidates:
            members = leaves[name]
            if len(self._free(members)) == len(members):
                return name, self._claim(members, key)
        raise AllocationError(f"{key}: no leaf switch with all nodes free in {pool or 'the fleet'}")

    def spread(
        self, key: str, pool: str | None, count: int, racks: int, min_count: int, max_share: float = 0.6
    ) -> list[Node]:
        """``count`` nodes spread evenly over ``racks`` racks of the pool; on small fleets fewer racks,
        and never more than ``max_share`` of the pool's free nodes, so other scenarios still fit."""
        by_rack = {r: self._free(ns) for r, ns in self.fleet.racks(pool).items()}
        count = min(count, max(min_count, int(sum(map(len, by_rack.values())) * max_share)))
        usable = shuffled(self.seed, sorted(r for r, ns in by_rack.items() if ns), key)[:racks]
        if not usable:
            raise AllocationError(f"{key}: no rack with free nodes in {pool or 'the fleet'}")
        # Round-robin over the racks, so the storm is as even as the racks' free nodes allow.
        queues = [shuffled(self.seed, by_rack[r], key, r) for r in usable]
        chosen: list[Node] = []
        while len(chosen) < count and any(queues):
            for q in queues:
                if q and len(chosen) < count:
                    chosen.append(q.pop(0))
        chosen.sort(key=lambda n: n.index)
        if len(chosen) < min_count:
            raise AllocationError(
                f"{key}: a storm needs at least {min_count} nodes, {len(chosen)} free in {pool}; "
                "use more --nodes"
            )
        return self._claim(chosen, key)
