"""How many nodes a set of scenarios needs: the answer a too-small ``--nodes`` gets.

Scenarios claim nodes (a leaf switch's racks, a pool, N free nodes), and the fleet layout is a pure
function of the node count, so whether a mix fits is decided by allocating it on a fleet of that
size, without simulating a tick. The smallest fitting size above the one asked for is found by
trying each size in turn (allocation takes microseconds to milliseconds).
"""

from __future__ import annotations

from sim.simulator.alloc import AllocationError
from sim.simulator.background import TICK_S
from sim.simulator.fleet import build_fleet
from sim.simulator.scenario import Scenario, ScenarioError, build


def fits(scenarios: list[Scenario], nodes: int, seed: int, start: int, hours: float) -> bool:
    end = start + max(1, int(hours * 3600) // TICK_S) * TICK_S
    try:
        build(scenarios, build_fleet(nodes), seed, start, end)
    except (AllocationError, ScenarioError):
        return False
    return True


def minimum_nodes(
    scenarios: list[Scenario], above: int, seed: int, start: int, hours: float, upto: int = 5000
) -> int | None:
    """The smallest fleet larger than ``above`` (at most ``upto``) the scenarios fit on, or None."""
    for n in range(above + 1, upto + 1):
        if fits(scenarios, n, seed, start, hours):
            return n
    return None
