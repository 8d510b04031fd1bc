"""Offline replay: the node stage and the guard over a recording with a virtual clock.

The very functions the streaming shell runs (``policy.engine.Engine``), fed synchronously: an event's
proposal is decided by the guard and applied to its node before the next event is read. Simulated
actuators (optional) answer decisions with ``action.result`` events at later event times, which are
merged into the stream in time order, so repair, validation and return to service happen in replay too.
Deterministic: same recording and policy, same bytes out.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from policy.driver import EventClock, fleet_copy
from policy.engine import Engine, NodeRuntime, NodeStep
from policy.guard import GuardState
from policy.model import Policy
from schemas.deadletter import DeadLetter
from schemas.decision import Decision
from schemas.events import Envelope
from schemas.evidence import Evidence
from schemas.parse import dead_letter, parse_event, validate_event_dict
from schemas.recording import iter_lines


class LoopActuators(Protocol):
    """Closes the loop in replay: decisions in, future ``action.result`` event dicts out."""

    def on_decision(self, decision: Decision) -> list[dict[str, Any]]: ...


@dataclass
class ReplaySummary:
    events: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    executable: int = 0
    evidence: int = 0
    injected: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "dead_letters": dict(self.dead_letters),
            "decisions_by_state": dict(self.decisions),
            "decisions_by_mode": dict(self.modes),
            "executable": self.executable,
            "evidence": self.evidence,
            "actuator_events": self.injected,
        }


PROGRESS_BYTES = 1 << 20


@dataclass
class ReplayOutput:
    decision: Decision | None = None
    evidence: Evidence | None = None
    dead: DeadLetter | None = None


class OfflineReplay:
    def __init__(self, policy: Policy, actuators: LoopActuators | None = None) -> None:
        self.engine = Engine(policy)
        self.actuators = actuators
        self.nodes: dict[str, NodeRuntime] = {}
        self.guard: GuardState = self.engine.new_guard()
        self.summary = ReplaySummary()
        self.time = EventClock(policy.tick_s, self.engine.gate_cfg.far_future_s)
        self._pending: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = 0
        self._order: list[str] = []
        """Node ids sorted, refreshed when a node joins (nodes are never removed)."""

    def run(self, path: str | Path, on_line: Callable[[int], None] | None = None) -> Iterator[ReplayOutput]:
        """Replay the recording at ``path``. ``on_line`` hears the bytes read, in batches of about
        ``PROGRESS_BYTES`` (a progress bar advanced per line cost ~4% of the replay) and at the end."""
        name = str(path)
        read = 0
        for n, raw in iter_lines(path):
            read += len(raw) + 1
            if on_line is not None and read >= PROGRESS_BYTES:
                on_line(read)
                read = 0
            parsed = parse_event(raw, f"{name}:{n}")
            if isinstance(parsed, DeadLetter):
                yield self._dead(parsed)
                continue
            if self._pending:
                yield from self._flush_injected(parsed.time.timestamp())
            yield from self._event(parsed, raw, f"{name}:{n}")
        if on_line is not None and read:
            on_line(read)
        yield from self._flush_injected(float("inf"))

    def _dead(self, d: DeadLetter) -> ReplayOutput:
        self.summary.dead_letters[d.reason.value] += 1
        return ReplayOutput(dead=d)

    def _event(self, ev: Envelope, raw: bytes, source: str) -> Iterator[ReplayOutput]:
        t = ev.time.timestamp()
        now = self.time.now(t)
        due = self.time.due(t)
        if due is not None:
            yield from self._ticks(due)
        if ev.node is None:
            yield from self._fleet(ev, raw, source, t)
            return
        step = self.engine.node_step(self.nodes.get(ev.node), ev, now)
        if step.rejection is not None:
            yield self._dead(dead_letter(raw, step.rejection[0], step.rejection[1], source))
            return
        assert step.runtime is not None
        self.nodes[ev.node] = step.runtime
        self._accept(t)
        if step.evidence or step.proposals:
            yield from self._outputs(step)
        copy = fleet_copy(ev)
        if copy is not None:  # policy.driver's scope fan-out: the streaming node stage publishes it
            yield from self._fleet(copy, raw, source, t, counted=False)

    def _fleet(
        self, ev: Envelope, raw: bytes, source: str, t: float, counted: bool = True
    ) -> Iterator[ReplayOutput]:
        """A node-less event, or the fleet-wide copy of a scoped one (not counted again)."""
        verdict = self.time.check_fleet(ev, self.engine.gate_cfg)
        if verdict is not None:
            yield self._dead(dead_letter(raw, verdict[0], verdict[1], source))
            return
        self.engine.fleet_step(self.nodes, ev, t)
        if counted:
            self._accept(t)

    def _accept(self, t: float) -> None:
        self.summary.events += 1
        self.time.accept(t)

    def _ticks(self, upto: float) -> Iterator[ReplayOutput]:
        """The ticks :mod:`policy.driver` schedules, each run for every node in node-id order."""
        for at in self.time.ticks(upto):
            if len(self._order) != len(self.nodes):
                self._order = sorted(self.nodes)
            for node in self._order:
                rt = self.nodes[node]
                if at >= rt.next_tick:
                    yield from self._outputs(self.engine.tick(rt, at))

    def _outputs(self, step: NodeStep) -> Iterator[ReplayOutput]:
        for e in step.evidence:
            self.summary.evidence += 1
            yield ReplayOutput(evidence=e)
        for p in step.proposals:
            for d in self.engine.guard_step(self.guard, p):
                yield from self._decision(d)

    def _decision(self, d: Decision) -> Iterator[ReplayOutput]:
        self.summary.decisions[d.to_state.value if not d.held else "held"] += 1
        self.summary.modes[d.mode.value] += 1
        self.summary.executable += int(d.executable)
        yield ReplayOutput(decision=d)
        rt = self.nodes.get(d.node)
        if rt is not None:
            yield from self._outputs(self.engine.apply_decision(rt, d))
        if self.actuators is not None:
            for ev in self.actuators.on_decision(d):
                self._seq += 1
                heapq.heappush(self._pending, (validate_event_dict(ev).time.timestamp(), self._seq, ev))

    def _flush_injected(self, upto: float) -> Iterator[ReplayOutput]:
        while self._pending and self._pending[0][0] <= upto:
            _, _, obj = heapq.heappop(self._pending)
            ev = validate_event_dict(obj)
            self.summary.injected += 1
            yield from self._event(ev, b"", "actuator")
