"""The node stage: per-node state around the engine's pure step functions, one partition at a time.

Where it sits: ``breakfix.events`` and ``breakfix.decisions`` (co-partitioned by node) → here →
``breakfix.proposals`` (guard input), ``breakfix.evidence``, ``breakfix.deadletter``. This module is
the part that needs no Kafka: :class:`NodeStage` turns input bytes into outputs and checkpoint values;
:class:`streams.pipeline.node_shell.NodeShell` moves them between topics and the table.

Durability rules (what a crash can lose):

* Node state lives in memory and is written to the changelogged table per partition every
  ``checkpoint_events`` events or ``checkpoint_s`` seconds, and a node's state is ALWAYS written
  before its proposal or registration leaves (lifecycle and evidence changes are durable before
  anything acts on them): :meth:`NodeStage.checkpoint_nodes` writes just those nodes' buckets.
  Nodes are packed into ``_BUCKETS`` table values per partition; a bucket is written with every
  node's current state, so nodes sharing a proposing node's bucket are written early too, which
  each node's own offset (below) already covers.
* Input is acknowledged (its offset becomes committable) only after the checkpoint that covers it, so
  a crash re-delivers everything after the last checkpoint; the node skips events whose offset it has
  already applied (each node's checkpoint keeps its last applied offset) and decisions it has already
  applied (by id): at-least-once delivery, exactly-once state change.
* A node that awaits a decision keeps its outgoing proposals (the outbox) in its checkpoint; after a
  restart they are sent again and the guard drops them by id if it already saw them.
* Input that reaches a node while it awaits its decision is buffered in the node's state and
  checkpointed with it: the checkpoint acknowledges it before the node has applied it.
* Each node's checkpoint also keeps the partition's stream clock as it was right after the node's last
  event: the partition's own record (clock included) is written only by full checkpoints, so a crash
  before one (or long after one, with proposals in between) restores nodes that already applied
  input the partition record does not cover. Skipping that re-delivered input must still move the
  clock as it moved the first time, or a clock 2 h fast would be accepted after the restart and
  ordinary events dead-lettered as far_future (:meth:`NodeStage._already_applied`).
* The partition record also keeps the next offset of each input topic: a consumer that resumes past
  it skipped input the state never applied, which the shell reads back (streams.pipeline.input_offsets).
* So a crash loses only un-checkpointed in-memory state, which is rebuilt by re-processing; evidence
  and dead letters sent before the crash may be sent a second time (same ids), never lost.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from policy.driver import EventClock, fleet_copy
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.decision import REISSUED, Decision
from schemas.events import Envelope
from schemas.evidence import Evidence
from schemas.gate import GateConfig, NodeGate
from schemas.parse import dead_letter, parse_event
from schemas.proposal import Proposal
from schemas.recording import dumps
from streams.pipeline.input_offsets import InputOffsets
from streams.pipeline.watermark import OrderKey
from streams.signed_input import SIGNERS, SignedInput

log = logging.getLogger(__name__)

REFUSED = (ValueError, KeyError, TypeError, binascii.Error, zlib.error)
"""What decoding a stored record raises when it is not one this version reads: a state record of an
unknown, former or corrupt format (``policy.record_codec.RecordRefused`` is a ValueError), bad JSON,
missing fields, bad compression. Such a record is refused, never executed, and the state rebuilt from
retained input."""

_TOP = "\U0010ffff"
"""Sorts after every node id: an idle partition has sent everything up to its time."""
TICK = "!"
"""Prefix of a tick's order key: sorts before every node id (they start with a letter or digit) and
after the fleet's "". Offline replay runs every node's tick at T before any event stamped T, so the
guard's order of one time step is all ticks (by node), then all events (by node)."""
_APPLIED_DECISIONS = 32
_BUCKETS = 32
"""Table values per partition that node records are packed into (a node's bucket: crc32 of its id).
Faust's changelog path costs ~0.1-0.2 ms per record; one record per node made a 10,000-node fleet's
checkpoint of a partition ~850 records and held the stage 70-170 ms (up to 0.6 s on a loaded box);
32 values carry the same bytes for a 25th of the records. At ~8.7 KB per mature node record a
bucket stays under the broker's 1 MB message limit up to ~3,600 nodes per partition (~43,000 nodes
on the 12 event partitions)."""
_GOLDEN = 0.6180339887
"""Partition p's checkpoint phase is (p * golden ratio) mod 1 of the interval: evenly spread for any
partition count."""


class Runtime(Protocol):
    @property
    def pending(self) -> bool: ...

    def to_bytes(self) -> bytes: ...


class Step(Protocol):
    runtime: Any
    evidence: list[Evidence]
    proposals: list[Any]
    rejection: tuple[DeadLetterReason, str] | None


class EngineLike(Protocol):
    """What the shell needs of ``policy.engine.Engine`` (the one implementation of the logic)."""

    def node_step(self, rt: Any, event: Envelope, now: float) -> Step: ...

    def fleet_step(self, runtimes: dict[str, Any], event: Envelope, now: float) -> list[Step]: ...

    def apply_decision(self, rt: Any, decision: Decision) -> Step: ...

    def tick(self, rt: Any, now: float) -> Step: ...


@dataclass
class GuardItem:
    """One message for the guard's partition; ``key`` orders it (streams.pipeline.watermark)."""

    kind: str
    key: OrderKey
    item_id: str
    node: str
    body: bytes
    partition: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": list(self.key), "id": self.item_id, "body": self.body.decode()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], node: str, partition: int) -> GuardItem:
        t, n, s = d["key"]
        return cls(d["kind"], (float(t), str(n), int(s)), d["id"], node, d["body"].encode(), partition)


@dataclass
class _Buffered:
    """Input that reached a node while it awaited a decision: an event, a node-less event or a tick."""

    offset: int
    event: Envelope | None
    raw: bytes
    source: str
    now: float
    fleet: bool = False
    replay: bool = False

    def to_dict(self) -> dict[str, Any]:
        tick = self.event is None
        raw = "" if tick else self.raw.decode("utf-8", errors="replace")
        return {"o": self.offset, "raw": raw, "src": self.source, "now": self.now, "fleet": self.fleet,
                "replay": self.replay, "tick": tick}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Buffered | None:
        if d["tick"]:
            return cls(int(d["o"]), None, b"", d["src"], float(d["now"]), replay=bool(d["replay"]))
        raw = d["raw"].encode()
        event = parse_event(raw, d["src"])  # it parsed when it was buffered, so it parses again
        if isinstance(event, DeadLetter):
            return None
        return cls(int(d["o"]), event, raw, d["src"], float(d["now"]), bool(d["fleet"]), bool(d["replay"]))


@dataclass
class NodeSlot:
    """A node's runtime plus the shell's bookkeeping, checkpointed together as one table value."""

    rt: Any = None
    offset: int = -1
    seq: int = 0
    outbox: list[GuardItem] = field(default_factory=list)
    hold: OrderKey | None = None
    """Order key of the proposal awaiting its decision: the partition's progress stops at the node's
    next key at that time (:meth:`NodeStage.progress`)."""
    applied: deque[str] = field(default_factory=lambda: deque(maxlen=_APPLIED_DECISIONS))
    buffer: list[_Buffered] = field(default_factory=list)
    """Checkpointed with the node: the input it holds may already be acknowledged."""
    buffered_to: int = -1
    """Offset of the newest event in ``buffer``: a re-delivered one is not buffered twice."""
    clock: float = -math.inf
    """The partition's stream clock right after this node's last event applied on arrival (a lower
    bound of the clock at ``offset``): what a restart re-derives the clock from while it skips."""

    @property
    def pending(self) -> bool:
        return self.rt is not None and bool(self.rt.pending)


@dataclass
class Outputs:
    dead_letters: list[DeadLetter] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    guard: list[GuardItem] = field(default_factory=list)
    fanout: list[bytes] = field(default_factory=list)
    """Node-less copies of scoped change events, for every partition of the events topic."""


@dataclass
class PartitionState:
    time: EventClock
    """The partition's event time (:mod:`policy.driver`): its stream clock (newest accepted event
    time, the ``now`` of its steps, so a partition's outcome does not depend on how fast the worker's
    other partitions were read), its tick schedule and its fleet gate."""
    nodes: dict[str, NodeSlot] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    last_key: OrderKey = (-math.inf, "", 0)
    last_input_wall: float = 0.0
    position: int = 0
    """Next offset of the events topic to read, for the caught-up test of :meth:`NodeStage.progress`."""
    since_checkpoint: int = 0
    next_checkpoint_wall: float = 0.0
    """When the partition's next time-driven checkpoint falls due: a point of its own phase grid."""
    fleet_offset: int = -1
    holds: dict[str, OrderKey] = field(default_factory=dict)
    """Nodes awaiting a decision and the order key of their proposal: what caps the progress."""
    inputs: InputOffsets = field(default_factory=InputOffsets)
    """Next offset of each input topic the state needs, written with the partition record."""
    restored: bool = False
    """A partition record was in the table (else nothing of the partition was ever checkpointed)."""
    refused: int = 0
    """Stored records refused on restore: the partition was then rebuilt from its retained input."""


class NodeStage:
    """All partitions this worker holds. Not thread-safe: the shell serialises calls with a lock.

    Each partition runs on the event-time driver offline replay runs on (:class:`policy.driver.EventClock`:
    clock, far-future clamp, tick schedule, fleet gate); node-less events that pass the fleet gate go
    to every node of the partition, and each tick runs for each node in node-id order.
    """

    def __init__(
        self,
        engine: EngineLike,
        runtime_from_bytes: Any,
        gate_cfg: GateConfig,
        tick_s: float,
        checkpoint_events: int = 2000,
        checkpoint_s: float = 1.0,
        idle_s: float = 0.5,
        signed: SignedInput | None = None,
    ) -> None:
        """``signed``: the check of lifecycle events and decisions (streams.signed_input); None only
        where no broker carries the input (the in-process harness of streaming == offline)."""
        self.signed = signed
        self.engine = engine
        self.runtime_from_bytes = runtime_from_bytes
        self.gate_cfg = gate_cfg
        self.tick_s = tick_s
        self.checkpoint_events = checkpoint_events
        self.checkpoint_s = checkpoint_s
        self.idle_s = idle_s
        self.partitions: dict[int, PartitionState] = {}
        self.clock = -math.inf
        """The newest event time this worker has accepted: idle partitions report progress up to it."""

    # --- partitions -----------------------------------------------------------------------

    def _event_clock(self) -> EventClock:
        return EventClock(self.tick_s, self.gate_cfg.far_future_s)

    def assign(self, p: int, stored: Iterable[tuple[str, Any]], wall: float) -> list[GuardItem]:
        """Take over partition ``p`` from the table (all stored nodes; other partitions' are skipped);
        returns the outboxes of nodes awaiting a decision, to send again."""
        # Partitions' checkpoints are spread over the interval instead of all falling due together:
        # a full checkpoint holds the worker for its duration, and twelve at once were a latency spike.
        ps = PartitionState(
            self._event_clock(), last_input_wall=wall, next_checkpoint_wall=self._next_checkpoint(p, wall)
        )
        stored = list(stored)
        try:
            self._restore(ps, p, stored)
        except REFUSED as e:
            # One record this version cannot read: the partition's other records may depend on it
            # (its clock, its input offsets), so none of them is trusted. Started as never
            # checkpointed, the partition reads its input topics back from their log start.
            log.error("partition %d: a stored state record was refused (%s); its state is rebuilt "
                      "from the input topics' retained records", p, e)  # fmt: skip
            ps = PartitionState(self._event_clock(), last_input_wall=wall,
                                next_checkpoint_wall=ps.next_checkpoint_wall, refused=1)  # fmt: skip
        resend: list[GuardItem] = []
        for node, slot in ps.nodes.items():
            if slot.pending:
                resend.extend(slot.outbox)
                if slot.hold is not None:
                    ps.holds[node] = slot.hold
        self.partitions[p] = ps
        return resend

    def _restore(self, ps: PartitionState, p: int, stored: list[tuple[str, Any]]) -> None:
        packed: dict[str, NodeSlot] = {}
        for node, value in stored:
            d = stored_dict(value)
            if d.get("p") != p:
                continue
            if node.startswith(_BUCKET_PREFIX):
                packed.update((n, self._decode(n, rec, p)) for n, rec in d["nodes"].items())
                continue
            if node == partition_key(p):
                gate = {k: v for k, v in d["fleet_gate"].items() if v is not None}  # JSON has no -inf
                ps.time.fleet_gate = NodeGate.from_dict(gate)
                ps.fleet_offset = int(d["fleet_offset"])
                ps.time.next_tick = _infinite(d["next_tick"])
                ps.time.clock = _infinite(d["clock"])
                ps.inputs = InputOffsets(d.get("next"))
                ps.restored = True
                self.clock = max(self.clock, ps.time.clock)
                continue
            ps.nodes[node] = self._decode(node, d, p)  # one record per node, as written before buckets
        ps.nodes.update(packed)  # buckets are newer than any per-node record of the same node

    def revoke(self, p: int) -> None:
        self.partitions.pop(p, None)

    def unstarted(self, p: int, roles: list[str]) -> list[str]:
        """Input roles of a partition never checkpointed: the shell tells where their logs start."""
        ps = self.partitions[p]
        return [] if ps.restored else ps.inputs.unknown(roles)

    def start(self, p: int, role: str, offset: int) -> None:
        self.partitions[p].inputs.start(role, offset)

    def admit(self, p: int, role: str, offset: int) -> int | None:
        """:meth:`streams.pipeline.input_offsets.InputOffsets.admit` for partition ``p``."""
        return self.partitions[p].inputs.admit(role, offset)

    def read_to(self, p: int, role: str, offset: int) -> None:
        """Everything up to ``offset`` counts as read: the shell applies the skipped records the log
        still has, then the message at ``offset``."""
        self.partitions[p].inputs.applied(role, offset)

    # --- input ----------------------------------------------------------------------------

    def on_event(self, p: int, offset: int, raw: bytes, source: str, wall: float) -> Outputs:
        out = Outputs()
        ps = self.partitions[p]
        ps.last_input_wall = wall
        ps.since_checkpoint += 1
        ps.position = max(ps.position, offset + 1)
        parsed = parse_event(raw, source)
        if isinstance(parsed, DeadLetter):
            self._reject(out, parsed)
            return out
        if self.signed is not None and getattr(parsed, "type", "") in SIGNERS:
            refused = self.signed.event(parsed, raw, source)
            if refused is not None:
                self._reject(out, refused)
                return out
        t = parsed.time.timestamp()
        now = ps.time.now(t)
        due = ps.time.due(t)
        if due is not None:
            self._ticks(ps, p, offset, due, parsed.replay, out)
        node = parsed.node
        if node is None:
            self._fleet(ps, p, offset, parsed, raw, source, now, out)
            ps.last_key = max(ps.last_key, (t, "", 0))
            return out
        slot = ps.nodes.get(node)
        if slot is not None:
            if offset <= slot.offset:
                self._already_applied(ps, slot, offset, parsed)  # re-delivered after a restart
                return out
            if slot.pending:
                if offset > slot.buffered_to:
                    slot.buffer.append(_Buffered(offset, parsed, raw, source, now, False))
                    slot.buffered_to = offset
                    ps.dirty.add(node)
                # What it sends once drained is ordered after this (its hold caps progress below it).
                ps.last_key = max(ps.last_key, (t, node, slot.seq))
                return out
        self._node(ps, p, node, slot, offset, parsed, t, raw, source, now, out)
        cur = ps.nodes.get(node) if slot is None else slot
        if cur is not None and cur.offset == offset:
            cur.clock = ps.time.clock
        key = (t, node, cur.seq if cur else 0)
        if key > ps.last_key:
            ps.last_key = key
        return out

    def _already_applied(self, ps: PartitionState, slot: NodeSlot, offset: int, event: Envelope) -> None:
        """Move the clock over an event the node applied before a restart, as its first pass did.

        At the node's last applied offset the clock is known (``slot.clock``). Before it, an event
        counts only if it could have been accepted: no later than that clock (an accepted event never
        leaves the clock behind it), so a rejected far-future event moves nothing. (One rejected for
        another reason inside that window moves the clock early to a value it reaches by the node's
        last offset anyway.) Without this a partition whose whole input was covered by node records
        restarted with no clock at all, and one restored from an older partition record lagged."""
        t = event.time.timestamp()
        if offset == slot.offset:
            self._accept(ps, slot.clock)
        elif t <= slot.clock:
            self._accept(ps, t)

    def on_decision(self, p: int, raw: bytes, source: str, wall: float) -> Outputs:
        out = Outputs()
        ps = self.partitions[p]
        ps.last_input_wall = wall
        ps.since_checkpoint += 1
        try:
            decision = Decision.model_validate_json(raw)
        except ValidationError as err:
            self._reject(out, dead_letter(raw, DeadLetterReason.INVALID_VALUE, f"decision: {err}", source))
            return out
        refused = self.signed.decision(raw, decision.node, source) if self.signed is not None else None
        if refused is not None:
            self._reject(out, refused)
            return out
        slot = ps.nodes.get(decision.node)
        if slot is None or slot.rt is None or decision.id in slot.applied or REISSUED in decision.id:
            return out  # not this worker's node any more, applied before a restart, or a re-issue
        step = self.engine.apply_decision(slot.rt, decision)
        slot.applied.append(decision.id)
        key_time = slot.hold[0] if slot.hold else decision.time.timestamp()
        self._took(ps, p, decision.node, slot, step, key_time, decision.replay, out)
        self._drain(ps, p, decision.node, slot, out)
        return out

    # --- the pure steps -------------------------------------------------------------------

    def _node(
        self,
        ps: PartitionState,
        p: int,
        node: str,
        slot: NodeSlot | None,
        offset: int,
        event: Envelope,
        t: float,
        raw: bytes,
        source: str,
        now: float,
        out: Outputs,
    ) -> None:
        """``t``: the event's time as a timestamp (the caller has it already)."""
        step = self.engine.node_step(slot.rt if slot else None, event, now)
        if step.rejection is not None:
            reason, msg = step.rejection
            self._reject(out, dead_letter(raw, reason, msg, source))
            if slot is not None:
                slot.offset = offset
            return
        self._accept(ps, t)
        if slot is None:
            slot = ps.nodes[node] = NodeSlot()
        slot.offset = offset
        self._took(ps, p, node, slot, step, t, event.replay, out)
        copy = fleet_copy(event)
        if copy is not None:  # policy.driver's scope fan-out: every partition applies the copy
            out.fanout.append(dumps(copy))

    def _fleet(
        self,
        ps: PartitionState,
        p: int,
        offset: int,
        event: Envelope,
        raw: bytes,
        source: str,
        now: float,
        out: Outputs,
    ) -> None:
        """A node-less event: producers write it to every partition, each applies it to its own nodes
        (its rejection is dead-lettered once, by partition 0)."""
        if offset <= ps.fleet_offset:
            return
        ps.fleet_offset = offset
        verdict = ps.time.check_fleet(event, self.gate_cfg)
        if verdict is not None:
            if p == 0:
                self._reject(out, dead_letter(raw, verdict[0], verdict[1], source))
            return
        t = event.time.timestamp()
        self._accept(ps, t)
        ready = {}
        for n, slot in sorted(ps.nodes.items()):
            if slot.rt is None or offset <= slot.offset:
                continue
            if slot.pending:
                if offset > slot.buffered_to:
                    slot.buffer.append(_Buffered(offset, event, raw, source, t, True))
                    slot.buffered_to = offset
                    ps.dirty.add(n)
            else:
                ready[n] = slot.rt
        self._apply_fleet(ps, p, ready, offset, event, t, out)

    def _apply_fleet(
        self,
        ps: PartitionState,
        p: int,
        ready: dict[str, Any],
        offset: int,
        event: Envelope,
        t: float,
        out: Outputs,
    ) -> None:
        steps = self.engine.fleet_step(ready, event, t) if ready else []
        for n in ready:
            ps.nodes[n].offset = offset
            ps.dirty.add(n)
        for step in steps:
            n = step.runtime.node
            self._took(ps, p, n, ps.nodes[n], step, t, event.replay, out)

    def _accept(self, ps: PartitionState, t: float) -> None:
        ps.time.accept(t)
        if t > self.clock:
            self.clock = t

    def _ticks(self, ps: PartitionState, p: int, offset: int, now: float, replay: bool, out: Outputs) -> None:
        """Time-driven checks (silence, hysteresis), as offline replay runs them between events. A tick
        driven by replayed input is replay too: its proposals must never become executable."""
        for at in ps.time.ticks(now):
            for n, slot in sorted(ps.nodes.items()):
                if slot.pending:
                    # A tick re-derived after a restart may repeat one restored with the buffer; the
                    # drain runs a tick only when it is due, so the repeat is a no-op.
                    slot.buffer.append(_Buffered(offset, None, b"", "tick", at, replay=replay))
                    ps.dirty.add(n)
                elif slot.rt is not None and at >= slot.rt.next_tick:
                    self._took(ps, p, n, slot, self.engine.tick(slot.rt, at), at, replay, out, tick=True)

    def _drain(self, ps: PartitionState, p: int, node: str, slot: NodeSlot, out: Outputs) -> None:
        """Process the events a node received while it awaited its decision, in arrival order.

        After a restart a node's record (written when it proposed, ahead of its partition's record)
        can buffer input the partition has not re-read yet: offsets at or past ``ps.position``. Applying
        it must not move the partition's clock there, or the next event would run the ticks of every
        other node before their own re-read input reached them (agent_silent / evidence_cleared that
        offline replay never makes). The clock gets there when the partition re-reads that input
        (:meth:`_already_applied`, from the node's ``clock``: the partition's clock when the input
        arrived, a lower bound of the clock at that offset)."""
        while slot.buffer and not slot.pending:
            b = slot.buffer.pop(0)
            if b.event is None:
                if b.now >= slot.rt.next_tick:
                    step = self.engine.tick(slot.rt, b.now)
                    self._took(ps, p, node, slot, step, b.now, b.replay, out, tick=True)
            elif b.fleet:
                self._apply_fleet(ps, p, {node: slot.rt}, b.offset, b.event, b.now, out)
            else:
                clocks = (ps.time.clock, self.clock)
                t = b.event.time.timestamp()
                self._node(ps, p, node, slot, b.offset, b.event, t, b.raw, b.source, b.now, out)
                if b.offset >= ps.position:
                    ps.time.clock, self.clock = clocks
                if slot.offset == b.offset:
                    slot.clock = max(slot.clock, b.now)

    def _took(
        self,
        ps: PartitionState,
        p: int,
        node: str,
        slot: NodeSlot,
        step: Step,
        key_time: float,
        replay: bool,
        out: Outputs,
        tick: bool = False,
    ) -> None:
        if step.runtime is not None:
            slot.rt = step.runtime
        ps.dirty.add(node)
        if step.evidence:
            out.evidence.extend(step.evidence)
        if not step.proposals and slot.hold is None and not slot.outbox:
            return  # the common case: nothing to send, nothing held (so not in ps.holds)
        items = []
        for item in step.proposals:
            if replay and isinstance(item, Proposal) and not item.replay:
                item = item.model_copy(update={"replay": True})  # replayed input never acts
            key = (key_time, TICK + node if tick else node, slot.seq)
            slot.seq += 1
            kind = _kind(item)
            # Registrations carry no id; (node, emission number) is stable across re-processing.
            item_id = item.id if isinstance(item, Proposal) else f"{kind}:{node}:{key[2]}"
            items.append(GuardItem(kind, key, item_id, node, _dump(item), p))
        out.guard.extend(items)
        if slot.pending:
            if items:
                slot.outbox = [i for i in items if i.kind == "proposal"] or items
                slot.hold = slot.outbox[-1].key
        else:
            slot.outbox = []
            slot.hold = None
        if slot.hold is None:
            ps.holds.pop(node, None)
        else:
            ps.holds[node] = slot.hold

    def _reject(self, out: Outputs, letter: DeadLetter) -> None:
        out.dead_letters.append(letter)

    # --- checkpoints and progress ---------------------------------------------------------

    def due(self, p: int, wall: float) -> bool:
        ps = self.partitions[p]
        if not ps.dirty and ps.since_checkpoint == 0:
            if wall >= ps.next_checkpoint_wall:  # nothing to write at this point: wait for the next
                ps.next_checkpoint_wall = self._next_checkpoint(p, wall)
            return False
        return ps.since_checkpoint >= self.checkpoint_events or wall >= ps.next_checkpoint_wall

    def checkpoint(self, p: int, wall: float) -> list[tuple[str, bytes]]:
        """Table writes that make partition ``p``'s state durable; the caller acks its input after."""
        ps = self.partitions[p]
        writes = self._buckets(ps, p, ps.dirty)
        part = {"p": p, "fleet_gate": ps.time.fleet_gate.to_dict(), "fleet_offset": ps.fleet_offset,
                "next": ps.inputs.to_dict()}  # fmt: skip
        times = {"next_tick": _finite(ps.time.next_tick), "clock": _finite(ps.time.clock)}
        writes.append((partition_key(p), orjson.dumps({**part, **times})))
        ps.dirty.clear()
        ps.since_checkpoint = 0
        ps.next_checkpoint_wall = self._next_checkpoint(p, wall)
        return writes

    def _next_checkpoint(self, p: int, wall: float) -> float:
        """The first point after ``wall`` of partition ``p``'s grid (every ``checkpoint_s``, offset by
        its phase). A grid, not "interval after the last one": partitions idle together (a quiet fleet,
        a worker start) all fell due at the first input after it and stayed in step, twelve
        checkpoints in one burst every interval (the spikes of event->decision latency)."""
        phase = self.checkpoint_s * ((p * _GOLDEN) % 1.0)
        return phase + (math.floor((wall - phase) / self.checkpoint_s) + 1) * self.checkpoint_s

    def checkpoint_nodes(self, p: int, nodes: Iterable[str]) -> list[tuple[str, bytes]]:
        """Table writes for ``nodes`` only: what must be durable before their proposals leave.

        Acknowledges nothing (the partition's own record and the other nodes wait for the next full
        :meth:`checkpoint`); after a crash the input is re-read and these nodes skip what their stored
        offset covers, so a proposal costs one node's state write instead of its partition's.
        """
        return self._buckets(self.partitions[p], p, set(nodes))

    def progress(self, p: int, wall: float, highwater: int | None) -> OrderKey:
        """Every guard item of partition ``p`` ordered before this key has been handed out.

        A partition that has read everything there is (``highwater``: the events topic's end offset as
        the last fetch saw it) and heard nothing for ``idle_s`` counts as caught up to the worker's
        clock, so a quiet partition does not hold the guard back; a merely slow one never does.
        """
        ps = self.partitions[p]
        bound = ps.last_key
        caught_up = highwater is not None and ps.position >= highwater
        if caught_up and wall - ps.last_input_wall >= self.idle_s and self.clock > -math.inf:
            bound = max(bound, (self.clock, _TOP, 0))
        # A node awaiting its decision sends nothing more until it has it; what it sends then (the
        # input it buffered) is ordered no lower than its own next key at the pending item's time. For
        # a pending tick that is after every tick of the time step (ticks' keys carry TICK), so a
        # minute tick of many held nodes reaches the guard as one batch, not one per round trip.
        for node, hold in ps.holds.items():
            bound = min(bound, (hold[0], node, hold[2] + 1))
        return bound

    # --- encoding -------------------------------------------------------------------------

    def _buckets(self, ps: PartitionState, p: int, nodes: set[str]) -> list[tuple[str, bytes]]:
        """The buckets holding ``nodes``, each with all its nodes' current state (so none is dirty)."""
        wanted = {_bucket(n) for n in nodes}
        members: dict[int, list[str]] = {b: [] for b in wanted}
        for n in ps.nodes:
            b = _bucket(n)
            if b in wanted:
                members[b].append(n)
        writes = []
        for b in sorted(wanted):
            names = sorted(members[b])
            ps.dirty.difference_update(names)
            records = {n: self._record(ps.nodes[n], p) for n in names}
            writes.append((bucket_key(p, b), orjson.dumps({"p": p, "nodes": records})))
        return writes

    def _record(self, slot: NodeSlot, p: int) -> dict[str, Any]:
        return {
            "p": p,
            "rt": base64.b64encode(slot.rt.to_bytes()).decode() if slot.rt is not None else None,
            "offset": slot.offset,
            "seq": slot.seq,
            "outbox": [i.to_dict() for i in slot.outbox],
            "hold": list(slot.hold) if slot.hold else None,
            "applied": list(slot.applied),
            "buffer": [b.to_dict() for b in slot.buffer],
            "buffered_to": slot.buffered_to,
            "clock": _finite(slot.clock),
        }

    def _decode(self, node: str, d: dict[str, Any], p: int) -> NodeSlot:
        hold = d.get("hold")
        return NodeSlot(
            rt=self.runtime_from_bytes(base64.b64decode(d["rt"])) if d.get("rt") else None,
            offset=int(d["offset"]),
            seq=int(d["seq"]),
            outbox=[GuardItem.from_dict(i, node, p) for i in d.get("outbox", [])],
            hold=(float(hold[0]), str(hold[1]), int(hold[2])) if hold else None,
            applied=deque(d.get("applied", []), maxlen=_APPLIED_DECISIONS),
            buffer=[b for b in map(_Buffered.from_dict, d.get("buffer", [])) if b is not None],
            buffered_to=int(d.get("buffered_to", -1)),
            clock=_infinite(d.get("clock")),
        )


def stored_dict(value: bytes | dict[str, Any]) -> dict[str, Any]:
    """A table value as written (JSON bytes), or as Faust's changelog recovery hands it back: recovery
    decodes JSON whatever the table's value serializer says."""
    if isinstance(value, dict):
        return value
    d = orjson.loads(value)
    if not isinstance(d, dict):
        raise ValueError(f"a stored value is a JSON {type(d).__name__}, not an object")
    return d


def _finite(t: float) -> float | None:
    return None if t == -math.inf else t


def _infinite(t: float | None) -> float:
    return -math.inf if t is None else float(t)


_BUCKET_PREFIX = "/nodes/"


def _bucket(node: str) -> int:
    return zlib.crc32(node.encode()) % _BUCKETS


def bucket_key(p: int, b: int) -> str:
    """Table key of bucket ``b`` of partition ``p``: a JSON object of its nodes' records."""
    return f"{_BUCKET_PREFIX}{p}/{b}"


def partition_key(p: int) -> str:
    """Table key of a partition's own state (fleet gate, tick schedule); '/' never occurs in node ids."""
    return f"/partition/{p}"


def _kind(item: BaseModel) -> str:
    return "proposal" if isinstance(item, Proposal) else type(item).__name__.lower()


def _dump(item: BaseModel) -> bytes:
    return item.__pydantic_serializer__.to_json(item)
