"""Safety invariants over a decision log: what must hold whatever the input, the faults or the policy.

The guard enforces these rules as it decides; this module re-derives them from the log alone, as an
auditor would, so a test can prove the guard (and everything around it: restarts, replays, backlogs)
never broke them. The log is the ordered sequence the guard saw and produced: decisions interleaved
with the control messages that flipped kill switches and emergency mode. Pure: no I/O, no clock.

Invariants (each :class:`Violation` names one):

- ``headroom``: a quarantine never leaves a pool with fewer in-service GPUs than its minimum;
- ``rack_concurrency``: never more than ``per_rack`` nodes of one rack in flight outside emergency
  (against a decisive fault, a node Quarantined for a ticket, waiting on a person with nothing of the
  product's running on it, is not in flight: the guard's rule, ``Guard._not_holding``);
- ``killswitch``: never an executable decision while the global or the node's pool kill switch is on;
- ``unowned_lift``: a node is only returned to service from a hold this log shows the product set;
- ``replay_or_stale_executable``: a replayed or stale decision is never executable.

Tenant reports are the policy's stated exception to capacity rules (a tenant's report takes the
machine out of allocation at once), so ``headroom`` and ``rack_concurrency`` skip them.

>>> from schemas.proposal import Placement
>>> check([], {"n1": Placement(pool="p", rack="r", sku="s", gpus=8)}, min_healthy=lambda pool: 0.5)
[]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from policy.levers import Levers, apply
from policy.lifecycle import IN_FLIGHT
from schemas.common import NodeState
from schemas.control import ControlMessage
from schemas.decision import ActionKind, Decision
from schemas.events import Envelope, NodeInventory
from schemas.proposal import Placement
from schemas.vocab import FailureClass, Trigger

HOLDS = IN_FLIGHT | {NodeState.ESCALATED}
"""States in which the product holds a node out of service (the guard's out-of-service count)."""
CAPACITY_EXEMPT = frozenset({FailureClass.TENANT_REPORT})
LogItem = Decision | ControlMessage


@dataclass(frozen=True)
class Violation:
    invariant: str
    decision_id: str
    node: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.decision_id} on {self.node}: {self.detail}"


@dataclass
class _Fleet:
    placements: Mapping[str, Placement]
    states: dict[str, NodeState] = field(default_factory=dict)
    set_by_us: set[str] = field(default_factory=set)
    parked: set[str] = field(default_factory=set)
    """Nodes whose last decision quarantined them for a ticket."""
    levers: Levers = field(default_factory=Levers)

    def state(self, node: str) -> NodeState:
        return self.states.get(node, NodeState.HEALTHY)

    def in_pool(self, pool: str) -> list[str]:
        return [n for n, p in self.placements.items() if p.pool == pool]


def placements_from_events(events: Iterable[Envelope]) -> dict[str, Placement]:
    """Each node's latest placement from its ``node.inventory`` events (other events are ignored)."""
    out: dict[str, Placement] = {}
    for ev in events:
        if isinstance(ev, NodeInventory):
            d = ev.data
            out[ev.node] = Placement(pool=d.pool, rack=d.rack, sku=d.sku, gpus=d.gpus, labels=d.labels)
    return out


def check(
    log: Iterable[LogItem],
    placements: Mapping[str, Placement],
    min_healthy: Callable[[str], float],
    per_rack: int = 1,
    others: Iterable[str] = (),
) -> list[Violation]:
    """Every violation in ``log``, in order. ``min_healthy(pool)`` is the pool's minimum in-service
    fraction (``Policy.min_healthy_fraction``); ``per_rack`` the policy's per-rack in-flight limit;
    ``others`` the nodes someone else (an operator, another tool) held out of service when the log
    began: they count against headroom and the product must never lift them."""
    fleet = _Fleet(placements, states=dict.fromkeys(others, NodeState.ESCALATED))
    out: list[Violation] = []
    for item in log:
        if isinstance(item, ControlMessage):
            apply(fleet.levers, item)
            continue
        out.extend(_judge(fleet, item, min_healthy, per_rack))
        if not item.held and item.action is not ActionKind.FLEET_INCIDENT:
            if item.to_state in HOLDS:
                fleet.set_by_us.add(item.node)
            else:
                fleet.set_by_us.discard(item.node)
            fleet.states[item.node] = item.to_state
            if item.to_state is NodeState.QUARANTINED and item.action is ActionKind.TICKET:
                fleet.parked.add(item.node)
            else:
                fleet.parked.discard(item.node)
    return out


def _judge(fleet: _Fleet, d: Decision, min_healthy: Callable[[str], float], per_rack: int) -> list[Violation]:
    out: list[Violation] = []
    place = fleet.placements.get(d.node)
    if d.executable and (d.replay or d.stale):
        out.append(
            Violation("replay_or_stale_executable", d.id, d.node, f"replay={d.replay} stale={d.stale}")
        )
    if d.executable:
        engaged = fleet.levers.engaged(place.pool if place else None)
        if engaged:
            out.append(Violation("killswitch", d.id, d.node, f"executable while {','.join(engaged)} on"))
    if d.held or d.action is ActionKind.FLEET_INCIDENT:
        return out
    # The decision's own from_state counts too: a lift from a state this log never put the node in
    # is a lift of somebody else's hold.
    held = d.from_state in HOLDS or fleet.state(d.node) in HOLDS
    if held and d.to_state not in HOLDS and d.node not in fleet.set_by_us:
        out.append(
            Violation("unowned_lift", d.id, d.node, f"{d.from_state} -> {d.to_state}: no hold of ours")
        )
    entering = d.to_state in IN_FLIGHT and not held
    if not entering or place is None or d.failure_class in CAPACITY_EXEMPT:
        return out
    rack = [n for n, p in fleet.placements.items() if p.rack == place.rack and n != d.node]
    decisive = d.trigger == Trigger.DECISIVE_SIGNAL
    busy = sum(1 for n in rack if fleet.state(n) in IN_FLIGHT and not (decisive and n in fleet.parked))
    if busy + 1 > per_rack and not fleet.levers.emergency:
        out.append(Violation("rack_concurrency", d.id, d.node, f"{busy + 1} in flight in rack {place.rack}"))
    pool = fleet.in_pool(place.pool)
    total = sum(fleet.placements[n].gpus for n in pool)
    down = sum(fleet.placements[n].gpus for n in pool if n == d.node or fleet.state(n) in HOLDS)
    minimum = min_healthy(place.pool) * total
    if total - down < minimum:
        out.append(
            Violation(
                "headroom", d.id, d.node, f"{total - down} of {total} GPUs in {place.pool} < {minimum:.1f}"
            )
        )
    return out
