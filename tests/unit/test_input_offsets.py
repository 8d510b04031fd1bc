"""Stages' input offsets: what counts as skipped, and that they survive a checkpoint or snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from policy.engine import Engine, NodeRuntime, guard_from_bytes, guard_to_bytes
from policy.model import load_policy
from schemas.proposal import Placement, Proposal, Registration
from streams.pipeline.guard_stage import GuardStage
from streams.pipeline.input_offsets import InputOffsets
from streams.pipeline.node_stage import NodeStage


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


def test_the_guard_snapshot_resumes_proposals_at_its_oldest_held_item() -> None:
    """Held items are not in the snapshot (the broker re-delivers them), so its proposals offset must
    not pass them, or a restart that finds the consumer past them would never read them back."""
    engine = Engine(load_policy(None))
    kinds: dict[str, type[BaseModel]] = {"proposal": Proposal, "registration": Registration}
    guard = GuardStage(engine, guard_to_bytes, guard_from_bytes, kinds, 2, 1e12)
    t = datetime(2025, 1, 1, tzinfo=UTC)
    for offset, (node, part) in enumerate([("n-a", 0), ("n-b", 1)]):
        assert guard.inputs.admit("proposals", offset) is None
        reg = Registration(node=node, time=t, placement=Placement(pool="p", rack="r", sku="H100", gpus=8))
        body = reg.model_dump_json().encode()
        assert guard.on_item("registration", (t.timestamp(), node, 0), f"reg-{node}", body, part, 0.0, offset)
    guard.on_progress(0, (t.timestamp() + 1, "", 0))
    guard.on_progress(1, (t.timestamp(), "n-a", 5))  # every partition is past n-a, not yet past n-b
    assert guard.release(0.0) == ["reg-n-a"]
    assert guard.inputs.admit("control", 0) is None

    restarted = GuardStage(engine, guard_to_bytes, guard_from_bytes, kinds, 2, 1e12)
    restarted.restore(guard.snapshot())
    assert restarted.inputs.next == {"proposals": 1, "control": 1}
    assert restarted.inputs.missing_from("proposals", 2) == 1, "n-b's registration must be read again"
