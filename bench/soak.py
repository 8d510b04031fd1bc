"""Soak: a fleet's telemetry at a multiple of its steady rate into the node stage, for a bounded time.

A 10,000-node fleet scraped every ~14 s sends ≈700 events/s; the default here is 10x that. Events are
produced at a paced rate with event time = wall time (nothing is stale or far in the future), the
workers are real ``streams.workers`` processes, and every ``sample_s`` the soak records the consumer
lag of the node stage's group (produced end offsets, known exactly from the producer's own
acknowledgements, minus the group's committed offsets) and each worker's resident memory. After the
load stops it waits for the lag to drain, which is what "bounded" means on a machine too small to
keep up: the backlog is finite and is worked off.

Run: ``python -m bench.soak --minutes 10 [--rate 7000] [--nodes 10000] [--workers 2]`` (starts its own
Tansu broker); ``tests/reliability/test_load.py`` runs it for ~30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams import workers
from streams.embedded_broker import EmbeddedBroker
from streams.settings import StreamSettings
from streams.topics import create_topics

EVENTS = "breakfix.events"
STEADY_RATE_10K = 700.0
"""Events/s of a 10,000-node fleet at steady state (one scrape per node every ~14 s)."""


@dataclass
class SoakResult:
    duration_s: float
    target_rate: float
    sent: int = 0
    achieved_rate: float = 0.0
    lag: list[int] = field(default_factory=list)
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    drain_s: float | None = None
    final_lag: int = 0
    after_s: float = 0.0
    """Seconds waited after the load stopped (until drained, or the drain timeout)."""
    exited: dict[str, int | None] = field(default_factory=dict)
    """Workers that exited during the run, with their exit codes (a crash under load is a defect)."""

    def percentile(self, q: float) -> int:
        if not self.lag:
            return 0
        s = sorted(self.lag)
        return s[min(len(s) - 1, math.ceil(q * len(s)) - 1)]

    def summary(self) -> dict[str, object]:
        growth = {w: round(v[-1] - v[0], 1) for w, v in self.rss_mb.items() if v}
        return {
            "duration_s": round(self.duration_s, 1),
            "target_events_per_s": self.target_rate,
            "achieved_events_per_s": round(self.achieved_rate),
            "events_sent": self.sent,
            "lag_p50": self.percentile(0.5),
            "lag_p99": self.percentile(0.99),
            "lag_max": max(self.lag, default=0),
            "drain_s": None if self.drain_s is None else round(self.drain_s, 1),
            "final_lag": self.final_lag,
            "processed_events_per_s": round((self.sent - self.final_lag) / (self.duration_s + self.after_s)),
            "workers_exited": self.exited,
            "rss_start_mb": {w: v[0] for w, v in self.rss_mb.items() if v},
            "rss_growth_mb": growth,
        }


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _event(i: int, node: str, kind: str) -> bytes:
    now = datetime.now(UTC).isoformat()
    if kind == "inv":
        data: dict[str, object] = {"pool": f"pool-{i % 20}", "rack": f"r{i // 16}", "sku": "H100", "gpus": 8}
        return orjson.dumps({"id": f"inv-{node}", "type": "node.inventory", "source": "soak", "time": now,
                             "node": node, "data": data})  # fmt: skip
    gpus = [{"index": g, "temp_c": 55, "power_w": 400, "util": 0.9, "sbe_volatile": 0} for g in range(8)]
    return orjson.dumps({"id": f"s-{i}", "type": "gpu.sample", "source": "soak", "time": now, "node": node,
                         "data": {"gpus": gpus}})  # fmt: skip


class _Ends:
    """Exact produced end offsets per partition, from the producer's acknowledgements."""

    def __init__(self) -> None:
        self.ends: dict[int, int] = {}

    def ack(self, fut: asyncio.Future[object]) -> None:
        if fut.exception() is None:
            md = fut.result()
            p, o = md.partition, md.offset  # type: ignore[attr-defined]
            self.ends[p] = max(self.ends.get(p, 0), o + 1)


async def _lag(settings: StreamSettings, ends: _Ends) -> int:
    c = AIOKafkaConsumer(
        bootstrap_servers=settings.broker, group_id=settings.app_id, enable_auto_commit=False
    )
    await c.start()
    try:
        lag = 0
        for p, end in ends.ends.items():
            done = await c.committed(TopicPartition(settings.topic(EVENTS), p)) or 0
            lag += max(0, end - done)
        return lag
    finally:
        await c.stop()


async def run_load(
    settings: StreamSettings,
    procs: dict[str, subprocess.Popen[bytes]],
    duration_s: float,
    rate: float,
    nodes: int,
    sample_s: float = 2.0,
    drain_timeout_s: float = 120.0,
) -> SoakResult:
    """Produce ``rate`` events/s for ``duration_s`` into running workers ``procs``; sample lag and RSS."""
    res = SoakResult(duration_s, rate)
    ends = _Ends()
    names = [f"soak-{n:05d}" for n in range(nodes)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker, linger_ms=20, max_batch_size=262_144)
    await producer.start()
    topic = settings.topic(EVENTS)
    try:
        for i, node in enumerate(names):
            (await producer.send(topic, _event(i, node, "inv"), key=node.encode())).add_done_callback(
                ends.ack
            )
        await producer.flush()
        start = time.monotonic()
        next_sample = start
        i = 0
        while (now := time.monotonic()) - start < duration_s:
            due = int((now - start) * rate)
            while i < due:
                node = names[i % nodes]
                fut = await producer.send(topic, _event(i, node, "s"), key=node.encode())
                fut.add_done_callback(ends.ack)
                i += 1
            if now >= next_sample:
                await producer.flush()
                res.lag.append(await _lag(settings, ends))
                for w, p in procs.items():
                    res.rss_mb.setdefault(w, []).append(_rss_mb(p.pid))
                next_sample = now + sample_s
            await asyncio.sleep(0.01)
        await producer.flush()
        res.sent = i
        res.achieved_rate = i / (time.monotonic() - start)
        stopped = time.monotonic()
        while time.monotonic() - stopped < drain_timeout_s:
            res.final_lag = await _lag(settings, ends)
            if res.final_lag == 0:
                res.drain_s = time.monotonic() - stopped
                break
            await asyncio.sleep(1.0)
        res.after_s = time.monotonic() - stopped
        for w, p in procs.items():
            if p.poll() is None:
                res.rss_mb.setdefault(w, []).append(_rss_mb(p.pid))
            else:
                res.exited[w] = p.returncode
    finally:
        await producer.stop()
    return res


def soak(settings: StreamSettings, n_workers: int, log_dir: Path, **kw: float) -> SoakResult:
    """Create topics, start ``n_workers`` workers, run the load, stop the workers."""
    asyncio.run(create_topics(settings))
    procs = {
        f"worker-{i}": workers.start_worker(settings, i, log_dir / f"worker-{i}.log")
        for i in range(n_workers)
    }
    try:
        time.sleep(8.0)  # group join and recovery before the clock starts
        return asyncio.run(run_load(settings, procs, **kw))  # type: ignore[arg-type]
    finally:
        for p in procs.values():
            workers.stop(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=10 * STEADY_RATE_10K)
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--drain-timeout", type=float, default=600.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="breakfix-soak-"))
    with EmbeddedBroker(log_dir=work) as broker:
        settings = StreamSettings(broker=broker.url, app_id="soak", data_dir=work / "data", web_port=0,
                                  session_timeout_s=10, heartbeat_s=1)  # fmt: skip
        res = soak(settings, args.workers, work, duration_s=args.minutes * 60, rate=args.rate,
                   nodes=args.nodes, sample_s=5.0, drain_timeout_s=args.drain_timeout)  # fmt: skip
    print(
        json.dumps(
            {**res.summary(), "lag_samples": res.lag, "rss_mb": res.rss_mb, "logs": str(work)}, indent=2
        )
    )


if __name__ == "__main__":
    main()
