"""The record's compact parts judge and score exactly as the objects they replace: the gate's id
digests (duplicates and eviction across a checkpoint, the partition record's JSON form old and new)
and the river window model's packed masses (scores after its first window, a foreign tree shape)."""

from __future__ import annotations

import random
import sys

from detectors import hst_pack
from detectors.models import NodeWindowModel
from schemas.deadletter import DeadLetterReason
from schemas.gate import GateConfig, NodeGate, check_event, id_hash
from tests.builders import T0, sample

CFG = GateConfig(max_ids=4)


def test_gate_remembers_the_same_ids_across_a_checkpoint() -> None:
    gate = NodeGate(gpus=8)
    events = [sample("n1", float(k)) for k in range(6)]
    for e in events:
        assert check_event(gate, e, T0 + 10, CFG) is None
    restored = NodeGate.from_state(gate.to_state())
    # The two oldest were evicted (accepted again); the four newest are duplicates.
    for dup in events[2:]:
        verdict = check_event(restored, dup, T0 + 10, CFG)
        assert verdict is not None and verdict[0] == DeadLetterReason.DUPLICATE
    assert check_event(restored, events[0], T0 + 10, CFG) is None
    assert list(restored.digests()) == [id_hash(e.id) for e in (*events[3:], events[0])]


def test_partition_record_json_reads_packed_and_former_ids() -> None:
    gate = NodeGate.of(None, T0, [id_hash("a"), id_hash("b")])
    d = gate.to_dict()
    assert set(d) == {"gpus", "last_time", "id_hashes"}
    assert NodeGate.from_dict(d) == gate
    former = {"gpus": None, "last_time": T0, "ids": ["a", "b"]}  # written before digests
    assert NodeGate.from_dict(former) == gate


def _feed(w: NodeWindowModel, rng: random.Random) -> float | None:
    score = None
    for _ in range(10):
        hot = rng.random() < 0.05
        score = w.add(
            60 + 40 * hot + rng.random(), 70 + 40 * hot, 500 + 300 * rng.random(), 90 * rng.random()
        )
    return score


def test_packed_window_model_scores_as_the_live_one() -> None:
    live, packed = NodeWindowModel(), NodeWindowModel()
    rng_a, rng_b = random.Random(3), random.Random(3)
    scores = []
    for _ in range(80):  # past the model's first 50-window pivot: both masses are in use
        a = _feed(live, rng_a)
        restored = NodeWindowModel(None, packed.pack(), packed.windows, packed.acc_n)
        packed = restored
        b = _feed(packed, rng_b)
        assert a == b
        scores.append(a)
    assert len({s for s in scores if s is not None}) > 5, "the model scored, and not one constant"
    assert live.model is not None and any(n.r_mass for n in hst_pack._nodes(live.model))


def test_trees_of_another_shape_restart_the_model() -> None:
    w = NodeWindowModel()
    _feed(w, random.Random(1))
    packed = w.pack()
    assert packed is not None and hst_pack.unpack(packed) is not None
    foreign = bytes([packed[0] ^ 0xFF]) + packed[1:]  # another river's trees: another fingerprint
    assert hst_pack.unpack(foreign) is None
    fresh = NodeWindowModel(None, foreign, w.windows)
    _feed(fresh, random.Random(1))
    assert fresh.model is not None and fresh.model.counter == 1, "learning starts over"


def test_gate_matches_whole_digests_only_and_stays_one_small_buffer() -> None:
    gate = NodeGate()
    a, b = id_hash("a").to_bytes(8, "little", signed=True), id_hash("b").to_bytes(8, "little", signed=True)
    gate.remember(a, 512)
    gate.remember(b, 512)
    straddling = a[4:] + b[:4]  # present in the buffer, but across two digests
    assert gate.packed.find(straddling) == 4
    assert not gate.seen(straddling) and gate.seen(a) and gate.seen(b)
    events = [sample("n1", float(k)) for k in range(2000)]
    for e in events:
        assert check_event(gate, e, T0 + 3000, GateConfig()) is None
    assert list(gate.digests()) == [id_hash(e.id) for e in events[-512:]]
    assert sys.getsizeof(gate.packed) < 5 * 1024, "512 ids per node in ~4 KB, not ~54 KB of int objects"
