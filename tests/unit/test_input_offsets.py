"""The node stage's input offsets: what counts as skipped, and that they survive a checkpoint."""

from __future__ import annotations

from typing import Any

from policy.engine import Engine, NodeRuntime
from policy.model import load_policy
from streams.input_offsets import InputOffsets
from streams.node_stage import NodeStage


def _stage() -> NodeStage:
    e: Any = Engine(load_policy(None))
    return NodeStage(e, NodeRuntime.from_bytes, e.gate_cfg, e.policy.tick_s)


def test_an_offset_past_the_next_needed_one_is_a_gap_and_redelivery_is_not() -> None:
    o = InputOffsets({"events": 10})
    assert o.missing_from("events", 10) is None
    assert o.missing_from("events", 3) is None  # re-delivered: the stage's dedup handles it
    assert o.missing_from("events", 14) == 10
    o.applied("events", 13)
    assert o.missing_from("events", 14) is None
    o.applied("events", 5)  # a re-delivered message never moves the mark back
    assert o.next["events"] == 14


def test_state_from_before_offsets_were_kept_checks_from_its_first_message() -> None:
    o = InputOffsets()
    assert o.missing_from("decisions", 500) is None
    o.applied("decisions", 500)
    assert o.missing_from("decisions", 502) == 501


def test_a_partition_never_checkpointed_starts_at_its_log_start_and_a_restored_one_at_its_record() -> None:
    stage = _stage()
    stage.assign(3, [], 0.0)
    assert stage.unstarted(3, ["events", "decisions"]) == ["events", "decisions"]
    stage.start(3, "events", 0)
    stage.start(3, "decisions", 0)
    assert stage.admit(3, "events", 7) == 0, "records 0-6 were never delivered"
    stage.read_to(3, "events", 7)
    assert stage.admit(3, "events", 8) is None
    assert stage.admit(3, "decisions", 0) is None
    writes = dict(stage.checkpoint(3, 1.0))

    restarted = _stage()
    restarted.assign(3, writes.items(), 2.0)
    assert restarted.unstarted(3, ["events", "decisions"]) == []
    assert restarted.admit(3, "events", 9) is None
    assert restarted.admit(3, "events", 4) is None  # re-delivered after the restart
    assert restarted.admit(3, "decisions", 2) == 1
