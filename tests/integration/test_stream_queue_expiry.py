"""Streaming equals offline replay on small fleets where queued proposals expire and nodes re-judge.

Small fleets fill a pool's concurrency slots quickly, so proposals wait in the guard's queue past the
stale cutoff; the node's renewal or withdrawal must land at the same place in both paths (it once did
not when the guard expired proposals on its own clock: 14 of 15 decisions streamed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from breakfix.cli.replay_cmd import run_offline
from policy.model import load_policy
from sim.simulator.clock import parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve
from streams.kafka.replay import replay_into_kafka
from streams.settings import StreamSettings
from tests.integration.test_stream_kafka import SCENARIOS, Workers, by_node, diff, read_decisions
from tests.integration.test_stream_kafka import settings as settings
from tests.reliability.safety import assert_safe

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("nodes", [10, 20])
def test_small_fleet_with_expiring_queue_streams_the_offline_decisions(
    settings: StreamSettings,
    tmp_path: Path,
    nodes: int,
) -> None:
    path = tmp_path / "rec.jsonl"
    scenarios = [load_scenario(p) for p in resolve(SCENARIOS)]
    start = parse_start("2025-01-01T00:00:00Z")
    simulate(SimConfig(nodes=nodes, hours=1, seed=3, start=start, scenarios=scenarios), path)
    offline, _ = run_offline(str(path), load_policy(None), None, None, None, False)
    assert len(offline) >= 10, "the recording must produce decisions, or the comparison proves nothing"
    pool = Workers(settings, tmp_path)
    try:
        pool.start(0)
        asyncio.run(replay_into_kafka(path, settings, as_fast_as_possible=True))
        streamed = read_decisions(settings, len(offline), timeout_s=60)
    finally:
        pool.stop_all()
    assert_safe(streamed, path)
    assert by_node(streamed) == by_node(offline), diff(streamed, offline)
