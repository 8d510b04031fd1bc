"""The bytes of a node's checkpoint record: what the node stage writes to its changelogged table for
every node that had input since the last checkpoint (thousands per checkpoint in a large fleet).

Format 2 is ``MAGIC`` followed by the runtime's fields as plain values (tuples, strings, numbers,
bytes, dicts) in the data-only encoding of ``policy.record_codec``: no class paths, no object graph,
nothing a reader could be made to run. Records of the former formats (format 1, a pickle of values,
and before it a plain pickle of the runtime) are refused, never unpickled: the node stage then
rebuilds the partition's state from its retained input (see ``docs/security/hardening.md``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from detectors.record import DetState, det_state, from_det_state
from detectors.state import DetectState
from policy import record_codec
from policy.lifecycle import Life
from schemas.common import NodeState
from schemas.gate import GateState, NodeGate
from schemas.proposal import Placement

MAGIC = b"NR\x02"
_REPAIRS = 16

Parts = tuple[str, NodeGate, DetectState, Life, Placement | None, float]
"""node, gate, detection state, lifecycle, placement, next tick: a ``NodeRuntime``'s fields."""


def _life_state(life: Life) -> tuple[Any, ...]:
    return (life.state.value, life.since, life.pending, life.decision_id, life.failure_class, life.gpu,
            life.action, life.executable, life.held_class, life.held_at, life.quiet_since,
            life.validated_at, tuple(life.repairs), life.tenant_issue, life.auto_repaired,
            life.job_reported)  # fmt: skip


def _life(t: tuple[Any, ...]) -> Life:
    """A lifecycle from its record; records written before ``job_reported`` existed lack it."""
    (state, since, pending, decision_id, failure_class, gpu, action, executable, held_class, held_at,
     quiet_since, validated_at, repairs, tenant_issue, auto_repaired) = t[:15]  # fmt: skip
    return Life(NodeState(state), since, pending, decision_id, failure_class, gpu, action, executable,
                held_class, held_at, quiet_since, validated_at, deque(repairs, maxlen=_REPAIRS),
                tenant_issue, auto_repaired, t[15] if len(t) > 15 else None)  # fmt: skip


def _placement_state(p: Placement | None) -> tuple[Any, ...] | None:
    return None if p is None else (p.pool, p.rack, p.sku, p.gpus, p.labels)


def _placement(t: tuple[Any, ...] | None) -> Placement | None:
    if t is None:
        return None
    pool, rack, sku, gpus, labels = t
    return Placement(pool=pool, rack=rack, sku=sku, gpus=gpus, labels=labels)


def encode(parts: Parts) -> bytes:
    node, gate, det, life, placement, next_tick = parts
    state: tuple[str, GateState, DetState, tuple[Any, ...], tuple[Any, ...] | None, float] = (
        node, gate.to_state(), det_state(det), _life_state(life), _placement_state(placement), next_tick
    )  # fmt: skip
    return record_codec.encode(MAGIC, state)


def decode(b: bytes) -> Parts:
    """The runtime's parts, or ``record_codec.RecordRefused`` for any other kind, format or damage."""
    value = record_codec.decode(MAGIC, "node", b)
    try:
        node, gate, det, life, placement, next_tick = value
        return (str(node), NodeGate.from_state(gate), from_det_state(node, det), _life(life),
                _placement(placement), float(next_tick))  # fmt: skip
    except (TypeError, ValueError) as e:
        raise record_codec.RecordRefused(f"malformed node record ({e})") from None
