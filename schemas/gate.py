"""Context checks a single message cannot answer alone: unknown node, duplicate, out of order, far
future, stale, and GPU indices beyond the node's inventory.

Pure and bounded: a node is known only after its ``node.inventory`` arrived, each node remembers at
most ``max_ids`` recent ids, so memory is O(known nodes * max_ids) however long the stream runs. The
per-node part (``NodeGate``) is plain data so the streaming shell can keep it with the node's state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from schemas.deadletter import DeadLetterReason
from schemas.events import Envelope, NodeInventory, event_type_of, gpu_indices


@dataclass(frozen=True)
class GateConfig:
    max_ids: int = 512
    """Recent event ids kept per node for duplicate detection (re-deliveries arrive close together)."""
    allowed_lateness_s: float = 300.0
    """How far behind the node's newest event a message may be before it is out of order."""
    far_future_s: float = 300.0
    stale_after_s: float = 6 * 3600.0
    """Older than this (against ``now``) is not telemetry any more, it is history: dead-lettered."""


@dataclass
class NodeGate:
    gpus: int | None = None
    last_time: float = float("-inf")
    ids: deque[str] = field(default_factory=deque)
    id_set: set[str] = field(default_factory=set)

    def remember(self, event_id: str, max_ids: int) -> None:
        self.ids.append(event_id)
        self.id_set.add(event_id)
        if len(self.ids) > max_ids:
            self.id_set.discard(self.ids.popleft())

    def to_dict(self) -> dict[str, Any]:
        return {"gpus": self.gpus, "last_time": self.last_time, "ids": list(self.ids)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeGate:
        ids = deque(str(i) for i in d.get("ids", []))
        return cls(
            gpus=d.get("gpus"), last_time=float(d.get("last_time", float("-inf"))), ids=ids, id_set=set(ids)
        )


Rejection = tuple[DeadLetterReason, str]


def check_event(gate: NodeGate | None, event: Envelope, now: float, cfg: GateConfig) -> Rejection | None:
    """Judge one typed event against its node's gate. ``gate`` is None for an unseen node.

    Accepting updates the gate in place (remembered id, newest time, inventory); a rejection leaves it
    untouched so bad input cannot poison the context that judges good input.
    """
    t = event.time.timestamp()
    if t - now > cfg.far_future_s:
        return DeadLetterReason.FAR_FUTURE, f"event time is {t - now:.0f}s ahead of the stream clock"
    if now - t > cfg.stale_after_s:
        return DeadLetterReason.STALE, f"event is {now - t:.0f}s old (cutoff {cfg.stale_after_s:.0f}s)"
    if gate is None:
        return DeadLetterReason.UNKNOWN_NODE, f"node {event.node!r} has sent no node.inventory yet"
    if event.id in gate.id_set:
        return DeadLetterReason.DUPLICATE, f"event id {event.id!r} already seen for this node"
    if t < gate.last_time - cfg.allowed_lateness_s:
        return (
            DeadLetterReason.OUT_OF_ORDER,
            f"event is {gate.last_time - t:.0f}s older than the node's newest event "
            f"(allowed lateness {cfg.allowed_lateness_s:.0f}s)",
        )
    if gate.gpus is not None and not isinstance(event, NodeInventory):
        bad = [i for i in gpu_indices(event) if i >= gate.gpus]
        if bad:
            return (
                DeadLetterReason.ABSURD_VALUE,
                f"{event_type_of(event)} names GPU index {bad[0]} but the node has {gate.gpus} GPUs",
            )
    gate.remember(event.id, cfg.max_ids)
    gate.last_time = max(gate.last_time, t)
    if isinstance(event, NodeInventory):
        gate.gpus = event.data.gpus
    return None


class FleetGate:
    """All nodes' gates plus the stream clock, for single-process use (offline replay, validate)."""

    def __init__(self, cfg: GateConfig | None = None) -> None:
        self.cfg = cfg or GateConfig()
        self.nodes: dict[str, NodeGate] = {}
        self.fleet = NodeGate()  # node-less events (pool-wide changes, cluster scheduler state)
        self.watermark = float("-inf")

    def check(self, event: Envelope, now: float | None = None) -> Rejection | None:
        """``now`` is processing time in streaming; offline it defaults to the newest accepted event."""
        t = event.time.timestamp()
        ref = now if now is not None else (self.watermark if self.watermark > float("-inf") else t)
        if event.node is None:
            verdict = check_event(self.fleet, event, ref, self.cfg)
        else:
            gate = self.nodes.get(event.node)
            if gate is None and isinstance(event, NodeInventory):
                gate = NodeGate()
                verdict = check_event(gate, event, ref, self.cfg)
                if verdict is None:
                    self.nodes[event.node] = gate
            else:
                verdict = check_event(gate, event, ref, self.cfg)
        if verdict is None:
            self.watermark = max(self.watermark, t)
        return verdict
