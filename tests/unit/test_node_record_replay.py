"""Checkpointing changes no decision: offline replay with every node's runtime encoded and decoded
again every few thousand events (as a worker restart restores them) makes exactly the decisions,
evidence and dead letters of the same replay keeping its runtimes in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.engine import NodeRuntime
from policy.model import load_policy
from sim import replay as replay_module
from sim.replay import OfflineReplay
from tests.unit.test_node_record import simulated_fleet

ROUND_TRIP_EVERY = 1000
"""Events between round trips: ~18 trips over the recording, each between two events."""


def _outputs(rec: Path, round_trip: bool) -> tuple[list[str], int, int]:
    replay = OfflineReplay(load_policy())
    lines = trips = 0

    def on_line(_: int) -> None:
        nonlocal lines, trips
        lines += 1
        if round_trip and lines % ROUND_TRIP_EVERY == 0:
            replay.nodes = {k: NodeRuntime.from_bytes(rt.to_bytes()) for k, rt in replay.nodes.items()}
            trips += 1

    out, decisions = [], 0
    for o in replay.run(rec, on_line):
        item = o.decision or o.evidence or o.dead
        assert item is not None
        out.append(item.model_dump_json())
        decisions += o.decision is not None
    return out, decisions, trips


def test_round_tripped_runtimes_decide_as_in_memory_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the progress hook is called before each line is read once every PROGRESS_BYTES: at one byte, that
    # is before every event, where a restart's restore would land
    monkeypatch.setattr(replay_module, "PROGRESS_BYTES", 1)
    rec = simulated_fleet(tmp_path)
    plain, decisions, _ = _outputs(rec, round_trip=False)
    tripped, _, trips = _outputs(rec, round_trip=True)
    assert trips >= 10 and decisions >= 10
    assert tripped == plain
