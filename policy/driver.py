"""The event-time driver: how a stream of events becomes the time the pure core runs at.

Offline replay drives one :class:`EventClock` over a whole recording; the streaming node stage drives
one per partition. Both follow the same four rules, so a recording replayed offline and the same
events streamed through Kafka reach the same decisions:

- **clock**: the newest accepted event time. A step sees the clock as it was *before* its event
  (the event's own time for the first event), so one event far ahead cannot move the ``now`` of its
  own checks;
- **far-future clamp**: an event more than the gate's ``far_future_s`` ahead of the clock runs no
  ticks (the gate will dead-letter it; a bad clock on one host must not age the whole fleet);
- **tick schedule**: time-driven checks (silence, hysteresis, holds) run every ``tick_s`` of event
  time on a grid aligned to the epoch, before the first event at or past each tick, for every node in
  node-id order; the first event only places the grid;
- **fleet gate**: a node-less event (a change, a fleet-wide notice) passes its own gate (duplicates,
  order, far future) against the clock before it reaches any node;
- **scope fan-out**: a change event applies by its scope wherever it arrives. One whose envelope names
  a node but whose scope reaches further (a pool, other nodes) is applied to its node, then its
  node-less copy (:func:`fleet_copy`) passes the fleet gate and reaches every node the scope names.
  Offline replay applies the copy at once; the streaming node stage that reads the original
  publishes the copy to every partition of the events topic, so a producer that writes the event
  keyed by one node gets the same decisions as offline replay.

>>> c = EventClock(tick_s=60.0, far_future_s=3600.0)
>>> c.due(1000.0)  # the first event places the grid and runs no tick
1000.0
>>> list(c.ticks(1000.0)), c.next_tick
([], 1020.0)
>>> c.accept(1000.0)
>>> list(c.ticks(c.due(1150.0)))
[1020.0, 1080.0, 1140.0]
>>> c.due(1000.0 + 7200) is None  # two hours ahead of the clock: no tick runs for it
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from schemas.deadletter import DeadLetterReason
from schemas.events import ChangeEvent, Envelope
from schemas.gate import GateConfig, NodeGate, check_event


@dataclass
class EventClock:
    """The event time of one stream. ``clock``, ``next_tick`` and ``fleet_gate`` are the state a
    stream checkpoints; ``tick_s`` and ``far_future_s`` come from the policy and the gate."""

    tick_s: float
    far_future_s: float
    clock: float = -math.inf
    next_tick: float = -math.inf
    fleet_gate: NodeGate = field(default_factory=NodeGate)

    def now(self, t: float) -> float:
        """The ``now`` of the step for an event stamped ``t``: the clock before it."""
        return self.clock if self.clock > -math.inf else t

    def accept(self, t: float) -> None:
        """An event stamped ``t`` was accepted: the clock never goes back."""
        if t > self.clock:
            self.clock = t

    def due(self, t: float) -> float | None:
        """The time ticks run up to before an event stamped ``t``, or None when none can be due (the
        common case, answered without a loop) or the event is too far ahead of the clock."""
        now = self.now(t)
        if t - now > self.far_future_s:
            return None
        at = max(now, t)
        return at if at >= self.next_tick else None

    def ticks(self, at: float) -> Iterator[float]:
        """The tick times due up to ``at`` (from :meth:`due`), oldest first; the schedule advances
        past each one before it is handed out. The first call only aligns the grid."""
        if self.next_tick == -math.inf:
            self.next_tick = (math.floor(at / self.tick_s) + 1) * self.tick_s
            return
        while at >= self.next_tick:
            tick = self.next_tick
            self.next_tick += self.tick_s
            yield tick

    def check_fleet(self, event: Envelope, gate: GateConfig) -> tuple[DeadLetterReason, str] | None:
        """The fleet gate's verdict on a node-less event (None: accepted and remembered)."""
        return check_event(self.fleet_gate, event, self.now(event.time.timestamp()), gate)


def fleet_copy(event: Envelope) -> ChangeEvent | None:
    """The node-less copy of a change event whose envelope names a node but whose scope reaches beyond
    it (a pool, or nodes other than its own), or None when the event needs no fan-out.

    >>> from datetime import UTC, datetime
    >>> d = {"kind": "driver", "version": "560.28.03", "scope": {"pool": "infer-a"}}
    >>> e = ChangeEvent(id="c1", source="ci", time=datetime(2025, 1, 1, tzinfo=UTC), node="n1", data=d)
    >>> fleet_copy(e).node is None, fleet_copy(e.model_copy(update={"node": None}))
    (True, None)
    """
    if not isinstance(event, ChangeEvent) or event.node is None:
        return None
    scope = event.data.scope
    if scope.pool is None and not set(scope.nodes or ()) - {event.node}:
        return None
    return event.model_copy(update={"node": None})
