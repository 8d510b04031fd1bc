"""Node records packed into a bounded number of table values per partition: a checkpoint of many
nodes is few records, a proposal's early write carries its whole bucket, and a restart restores every
node from buckets (over records written one per node by earlier versions)."""

from __future__ import annotations

from typing import Any

import orjson

from policy.engine import Engine, NodeRuntime
from policy.model import load_policy
from schemas.events import Envelope
from streams.pipeline.node_stage import _BUCKETS, NodeStage, partition_key
from tests.builders import inventory, sample

P = 5


def _stage() -> NodeStage:
    e: Any = Engine(load_policy(None))
    return NodeStage(e, NodeRuntime.from_bytes, e.gate_cfg, e.policy.tick_s)


def _raw(e: Envelope) -> bytes:
    return e.model_dump_json().encode()


def _fed(n_nodes: int) -> NodeStage:
    stage = _stage()
    stage.assign(P, [], 0.0)
    offset = 0
    for i in range(n_nodes):
        for e in (inventory(f"gpu-{i:04d}", t=0), sample(f"gpu-{i:04d}", 1.0 + i / 1000)):
            stage.on_event(P, offset, _raw(e), f"events/{P}@{offset}", 0.0)
            offset += 1
    return stage


def _slots(stage: NodeStage) -> dict[str, tuple[Any, ...]]:
    """What a restart must get back of each node: its runtime bytes and bookkeeping."""
    return {
        n: (s.rt.to_bytes(), s.offset, s.seq, s.clock, list(s.applied))
        for n, s in stage.partitions[P].nodes.items()
    }


def test_a_checkpoint_of_many_nodes_is_at_most_one_record_per_bucket_and_restores_them_all() -> None:
    stage = _fed(400)
    writes = stage.checkpoint(P, 1.0)
    assert len(writes) <= _BUCKETS + 1 < 400
    assert writes[-1][0] == partition_key(P), "the partition record closes the checkpoint"
    restarted = _stage()
    restarted.assign(P, writes, 2.0)
    assert _slots(restarted) == _slots(stage)
    assert len(restarted.partitions[P].nodes) == 400


def test_a_proposing_nodes_early_write_carries_its_bucket_and_leaves_it_clean() -> None:
    stage = _fed(200)
    stage.checkpoint(P, 1.0)
    ps = stage.partitions[P]
    ps.dirty.update(ps.nodes)  # every node changed since the checkpoint
    writes = stage.checkpoint_nodes(P, ["gpu-0007"])
    assert len(writes) == 1
    packed = orjson.loads(writes[0][1])["nodes"]
    assert "gpu-0007" in packed and len(packed) > 1
    assert not ps.dirty & set(packed), "nodes written with the bucket are not written again"
    assert len(ps.dirty) == 200 - len(packed)


def test_buckets_win_over_records_written_one_per_node_before_them() -> None:
    stage = _fed(50)
    old = stage.partitions[P].nodes["gpu-0003"]
    legacy = ("gpu-0003", orjson.dumps(stage._record(old, P)))  # the earlier one-record-per-node form
    old_offset = old.offset
    stage.on_event(P, 10_000, _raw(sample("gpu-0003", 30.0)), f"events/{P}@10000", 0.0)
    writes = stage.checkpoint(P, 1.0)
    restarted = _stage()
    restarted.assign(P, [legacy, *writes], 2.0)
    assert restarted.partitions[P].nodes["gpu-0003"].offset == 10_000
    only_legacy = _stage()
    only_legacy.assign(P, [legacy], 2.0)
    assert only_legacy.partitions[P].nodes["gpu-0003"].offset == old_offset < 10_000


def test_partitions_idle_together_fall_due_at_their_own_phase_not_all_at_once() -> None:
    """Twelve partitions idle through a quiet spell (the shell asks due() every tick) and then all get
    input: their checkpoints come one by one over the interval, not as one burst."""
    stage = NodeStage(_stage().engine, NodeRuntime.from_bytes, _stage().gate_cfg, 60.0, checkpoint_s=5.0)
    for p in range(12):
        stage.assign(p, [], 0.0)
    for k in range(2000):  # the shell's progress tick: every 0.05 s
        assert not any(stage.due(p, k * 0.05) for p in range(12))
    for p in range(12):
        stage.on_event(p, 0, _raw(inventory(f"n{p}", t=0)), f"events/{p}@0", 100.0)
    due_at = {
        p: next(100.0 + k * 0.05 for k in range(200) if stage.due(p, 100.0 + k * 0.05)) for p in range(12)
    }
    assert len({round(t, 2) for t in due_at.values()}) == 12
    assert max(due_at.values()) - min(due_at.values()) > 3.0
