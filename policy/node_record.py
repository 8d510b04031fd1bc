"""The bytes of a node's checkpoint record: what the node stage writes to its changelogged table for
every node that had input since the last checkpoint (thousands per checkpoint in a large fleet).

Format 1 is ``MAGIC`` followed by a pickle of builtins only (tuples, strings, numbers, bytes, dicts):
no class paths, no object graph, nothing but values, so it is a fraction of the size of the plain
pickle it replaces and faster both ways. Records written before it (a plain pickle of the runtime,
which starts with pickle's PROTO opcode) are still read: a worker restarted after an upgrade restores
from its changelog, and the next checkpoint rewrites them in format 1.
"""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any

from detectors.record import DetState, det_state, from_det_state, upgraded
from detectors.state import DetectState
from policy.lifecycle import Life
from schemas.common import NodeState
from schemas.gate import GateState, NodeGate
from schemas.proposal import Placement

MAGIC = b"NR\x01"
_LEGACY = b"\x80"
"""Pickle protocol 2 and later open with PROTO: the plain-pickle records written before format 1."""
_REPAIRS = 16

Parts = tuple[str, NodeGate, DetectState, Life, Placement | None, float]
"""node, gate, detection state, lifecycle, placement, next tick: a ``NodeRuntime``'s fields."""


def _life_state(life: Life) -> tuple[Any, ...]:
    return (life.state.value, life.since, life.pending, life.decision_id, life.failure_class, life.gpu,
            life.action, life.executable, life.held_class, life.held_at, life.quiet_since,
            life.validated_at, tuple(life.repairs), life.tenant_issue, life.auto_repaired)  # fmt: skip


def _life(t: tuple[Any, ...]) -> Life:
    (state, since, pending, decision_id, failure_class, gpu, action, executable, held_class, held_at,
     quiet_since, validated_at, repairs, tenant_issue, auto_repaired) = t  # fmt: skip
    return Life(NodeState(state), since, pending, decision_id, failure_class, gpu, action, executable,
                held_class, held_at, quiet_since, validated_at, deque(repairs, maxlen=_REPAIRS),
                tenant_issue, auto_repaired)  # fmt: skip


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
    return MAGIC + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def decode(b: bytes) -> Parts:
    if b.startswith(MAGIC):
        node, gate, det, life, placement, next_tick = pickle.loads(memoryview(b)[len(MAGIC) :])
        return (node, NodeGate.from_state(gate), from_det_state(node, det), _life(life),
                _placement(placement), float(next_tick))  # fmt: skip
    if b.startswith(_LEGACY):
        return _legacy_parts(pickle.loads(b))
    raise ValueError(f"not a node record (starts with {b[:4]!r})")


def _legacy_parts(rt: Any) -> Parts:
    """The parts of a runtime pickled whole before format 1 (a ``NodeRuntime`` object)."""
    return rt.node, rt.gate.upgraded(), upgraded(rt.det), rt.life, rt.placement, rt.next_tick
