"""Context checks a single message cannot answer alone: unknown node, duplicate, out of order, far
future, stale, and GPU indices beyond the node's inventory.

Pure and bounded: a node is known only after its ``node.inventory`` arrived, each node remembers at
most ``max_ids`` recent ids, so memory is O(known nodes * max_ids) however long the stream runs. The
per-node part (``NodeGate``) is plain data so the streaming shell can keep it with the node's state.

Ids are remembered as 64-bit digests (:func:`id_hash`), not as strings: the memory is checkpointed
with every node that had input, and 512 ids of a producer's choosing (``nvml-xid-<uuid>``: 41
characters) were most of a node's record. Two different ids share a digest with probability 2**-64,
so an event is mistaken for a duplicate of one of its node's 512 remembered ids with probability
512 / 2**64 ≈ 2.8e-17: at 3,500 events/s, once in ~300,000 years.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from array import array
from collections.abc import Iterable
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


def id_hash(event_id: str) -> int:
    """The 64-bit digest an event id is remembered by (signed, so it packs as an ``array('q')``).

    >>> id_hash("sim5-14c1a") == id_hash("sim5-14c1a") != id_hash("sim5-14c1b")
    True
    """
    return int.from_bytes(_digest_bytes(event_id), "little", signed=True)


GateState = tuple[int | None, float, bytes]
"""(gpus, last_time, remembered id digests packed little-endian, oldest first): a checkpoint's form."""

_WIDTH = 8
"""Bytes per remembered digest."""


def _digest_bytes(event_id: str) -> bytes:
    """The digest of :func:`id_hash` as its 8 little-endian bytes: the form the gate keeps."""
    return hashlib.blake2b(event_id.encode(), digest_size=_WIDTH).digest()


@dataclass
class NodeGate:
    gpus: int | None = None
    last_time: float = float("-inf")
    packed: bytearray = field(default_factory=bytearray)
    """Digests of the remembered ids, 8 little-endian bytes each, oldest first, in one flat buffer that
    membership searches with ``bytes.find``. A set of 512 digests as Python ints cost a node ~54 KB
    (int objects, the set's table and the array beside it): 540 MB on a 10,000-node fleet; this buffer
    costs 4 KB, a checkpoint copies it as it is, and a search of 4 KB takes ~1.2 us (a set: ~0.3)."""

    def __len__(self) -> int:
        return len(self.packed) // _WIDTH

    def seen(self, digest: bytes) -> bool:
        """Whether ``digest`` is one of the remembered ones (a match must start on an 8-byte boundary)."""
        at = self.packed.find(digest)
        while at != -1 and at % _WIDTH:
            at = self.packed.find(digest, at + 1)
        return at != -1

    def remember(self, digest: bytes, max_ids: int) -> None:
        self.packed += digest
        if len(self.packed) > max_ids * _WIDTH:
            del self.packed[: len(self.packed) - max_ids * _WIDTH]

    def digests(self) -> array[int]:
        """The remembered digests as :func:`id_hash` values, oldest first."""
        return _unpack(bytes(self.packed))

    def to_state(self) -> GateState:
        return self.gpus, self.last_time, bytes(self.packed)

    @classmethod
    def from_state(cls, s: GateState) -> NodeGate:
        gpus, last_time, packed = s
        return cls(gpus=gpus, last_time=last_time, packed=bytearray(packed))

    @classmethod
    def of(cls, gpus: int | None, last_time: float, digests: Iterable[int]) -> NodeGate:
        return cls(gpus=gpus, last_time=last_time, packed=bytearray(_pack(array("q", digests))))

    def to_dict(self) -> dict[str, Any]:
        packed = base64.b64encode(self.packed).decode()
        return {"gpus": self.gpus, "last_time": self.last_time, "id_hashes": packed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeGate:
        """Reads both forms: ``id_hashes`` (packed digests) and the former ``ids`` (a list of ids)."""
        gpus, last_time = d.get("gpus"), float(d.get("last_time", float("-inf")))
        if "id_hashes" in d:
            return cls(gpus=gpus, last_time=last_time, packed=bytearray(base64.b64decode(d["id_hashes"])))
        return cls.of(gpus, last_time, (id_hash(str(i)) for i in d.get("ids", [])))


def _pack(digests: array[int]) -> bytes:
    if sys.byteorder == "big":
        digests = array("q", digests)
        digests.byteswap()
    return digests.tobytes()


def _unpack(packed: bytes) -> array[int]:
    a = array("q")
    a.frombytes(packed)
    if sys.byteorder == "big":
        a.byteswap()
    return a


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
    digest = _digest_bytes(event.id)
    if gate.seen(digest):
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
    gate.remember(digest, cfg.max_ids)
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
