"""Load into real node-stage workers on loopback, in two phases on the same workers and broker.

1. The rate this machine sustains (``SUSTAINED_RATE``, found by ``python -m bench.soak --rate ...``
   sweeps): consumer lag must stay bounded (no upward trend, p99 within a few checkpoints' worth of
   input), the backlog must drain to zero afterwards (every produced event committed: nothing lost),
   no worker may exit, and memory must not run away.
2. 10x a 10,000-node fleet's steady rate (7,000 events/s), every node's state already built: the same
   bounds. This phase runs twice as long as the first because the lag is a sawtooth (committed offsets
   move when a partition checkpoints, every 5 s, each partition on its own phase; spread ~4k events at
   10x): fitted over 10 s of 1 s samples the trend's noise is ~+-440 events/s (4k / sqrt(82.5)), enough
   to read a bounded lag as growing at +1,300/s; over 20 s it is ~+-155/s against a
   bound of 700/s.

Every phase reports where the CPU went (cores used by the load generator, the Tansu broker, each
worker -- a worker runs the node stage and, on one of them, the guard -- and the whole machine, whose
remainder is other people's jobs). No sink runs here (bench/bench_sink.py measures it).
``BREAKFIX_SOAK=1`` runs each phase for minutes instead of seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reliability.figures import record

from bench.soak import STEADY_RATE_10K, soak
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.settings import StreamSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.alone]
LONG = os.environ.get("BREAKFIX_SOAK") == "1"
PHASE_S = 300.0 if LONG else 20.0
TEN_X_S = 300.0 if LONG else 40.0
SUSTAINED_RATE = float(os.environ.get("BREAKFIX_LOAD_RATE", "2000"))
"""Events/s the node stage sustains here with lag bounded (see docs/evidence/reliability.md)."""
TEN_X = 10 * STEADY_RATE_10K
MAX_RSS_MB = 1536.0
"""Per worker: a runaway ceiling. Per-node state is allocated as nodes are first seen (10,000 here),
so the bound on growth is checked in the second phase, once every node exists."""
MAX_PHASE_GROWTH_MB = 256.0


def test_load_lag_bounded_at_the_sustained_rate_and_at_ten_times(
    tansu: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    settings = StreamSettings(
        broker=tansu.url, app_id=f"load-{unique}", topic_prefix=f"l{unique}.", data_dir=tmp_path / "data",
        web_port=0, session_timeout_s=10, heartbeat_s=1, log_level="warning",
    )  # fmt: skip
    pids = {"broker": tansu.proc.pid} if tansu.proc else {}
    phases = [(SUSTAINED_RATE, PHASE_S, 60.0), (TEN_X, TEN_X_S, 60.0)]
    steady, ten_x = soak(settings, 2, tmp_path, phases, nodes=10_000, sample_s=1.0, pids=pids)
    kind = "soak_long" if LONG else "soak"
    a = record(f"load.{kind}_sustained", **steady.summary())
    b = record(f"load.{kind}_10x", **ten_x.summary())

    assert steady.exited == {} and ten_x.exited == {}, f"a worker died under load: {a} {b}"
    for phase, rate, fig in ((steady, SUSTAINED_RATE, a), (ten_x, TEN_X, b)):
        assert phase.achieved_rate >= 0.9 * rate, f"the load generator fell behind: {fig}"
        assert len(phase.lag) >= 10, "too few lag samples to speak of a p99 or a trend"
        # Bounded: committed offsets move at checkpoints (every 5 s per partition, phased), so the lag
        # is a sawtooth of a few seconds' input; unbounded lag grows at offered - processed.
        assert phase.lag_trend <= 0.1 * rate, f"lag grows at {rate:.0f} events/s: {fig}"
        assert phase.percentile(0.99) <= 10 * rate, f"lag p99 above 10 s of input: {fig}"
        assert phase.final_lag == 0, f"the backlog did not drain: events not processed: {fig}"
    for w in steady.rss_mb:
        rss = steady.rss_mb[w] + ten_x.rss_mb.get(w, [])
        assert max(rss) < MAX_RSS_MB, f"{w} memory ran away: {a} {b}"
        grew = ten_x.rss_mb[w][-1] - ten_x.rss_mb[w][0]
        assert grew < MAX_PHASE_GROWTH_MB, f"{w} grew {grew:.0f} MB with every node known: {b}"
