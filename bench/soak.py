"""Soak: a fleet's telemetry at one or more offered rates into the node stage, for a bounded time.

A 10,000-node fleet scraped every ~14 s sends ≈700 events/s; 10x that is the load the node
stage must sustain. Events are
produced at a paced rate with event time = wall time (nothing is stale or far in the future), the
workers are real ``streams.pipeline.workers`` processes, and every ``sample_s`` the soak records the consumer
lag of the node stage's group (produced end offsets, known exactly from the producer's own
acknowledgements, minus the group's committed offsets) and each worker's resident memory. Per phase
it reports offered and processed rate (committed offsets moved per second), lag p50/p99/max and its
trend (slope over the phase's second half: ~0 when bounded), RSS growth, and the CPU each process
used (/proc: load generator, broker, each worker, and the whole machine). After each phase it waits
for the lag to drain: a drained backlog means every produced event was processed.

Run: ``python -m bench.soak --minutes 1 --rate 400 800 1600 7000`` (a sweep; starts its own Tansu
broker); ``tests/reliability/test_load.py`` runs a sustained-rate phase (20 s) and a 10x phase (40 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

try:
    from bench import results
except ModuleNotFoundError:  # run as a script (python bench/x.py): bench/ itself is on sys.path
    import results  # type: ignore[no-redef]

from schemas.topics import Topic
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.keys import single_host_keys
from streams.pipeline import workers
from streams.settings import StreamSettings

EVENTS = Topic.EVENTS
STEADY_RATE_10K = 700.0
"""Events/s of a 10,000-node fleet at steady state (one scrape per node every ~14 s)."""


@dataclass
class SoakResult:
    """One load phase at one offered rate: lag, throughput, memory and where the CPU went."""

    duration_s: float
    target_rate: float
    sent: int = 0
    achieved_rate: float = 0.0
    lag: list[int] = field(default_factory=list)
    lag_t: list[float] = field(default_factory=list)
    """Seconds since the phase started, one per lag sample."""
    processed: int = 0
    """Events the node stage committed during the phase (its committed offsets moved this far)."""
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds (user + system) each process used during the phase; ``machine`` is every core's
    busy time, so what the rest of the machine (other engineers' jobs) took is visible too."""
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

    @property
    def processed_rate(self) -> float:
        return self.processed / self.duration_s if self.duration_s else 0.0

    @property
    def lag_trend(self) -> float:
        """Least-squares slope of the lag over the phase's second half, in events/s: about zero when
        the lag is bounded, about offered minus processed rate when it grows without bound. (The lag
        is read from committed offsets, which move at checkpoints: a sawtooth, hence a fit.)"""
        pts = [(t, lag) for t, lag in zip(self.lag_t, self.lag, strict=True) if t >= self.duration_s / 2]
        if len(pts) < 2:
            return 0.0
        mt = sum(t for t, _ in pts) / len(pts)
        ml = sum(lag for _, lag in pts) / len(pts)
        var = sum((t - mt) ** 2 for t, _ in pts)
        return sum((t - mt) * (lag - ml) for t, lag in pts) / var if var else 0.0

    def cpu_share(self) -> dict[str, float]:
        """Cores each process kept busy on average during the phase (1.0 = one core)."""
        return {k: round(v / self.duration_s, 2) for k, v in self.cpu_s.items()} if self.duration_s else {}

    def summary(self) -> dict[str, object]:
        growth = {w: round(v[-1] - v[0], 1) for w, v in self.rss_mb.items() if v}
        return {
            "duration_s": round(self.duration_s, 1),
            "target_events_per_s": self.target_rate,
            "offered_events_per_s": round(self.achieved_rate),
            "processed_events_per_s": round(self.processed_rate),
            "events_sent": self.sent,
            "lag_p50": self.percentile(0.5),
            "lag_p99": self.percentile(0.99),
            "lag_max": max(self.lag, default=0),
            "lag_trend_events_per_s": round(self.lag_trend),
            "drain_s": None if self.drain_s is None else round(self.drain_s, 1),
            "final_lag": self.final_lag,
            "workers_exited": self.exited,
            "rss_start_mb": {w: v[0] for w, v in self.rss_mb.items() if v},
            "rss_growth_mb": growth,
            "cpu_cores": self.cpu_share(),
        }


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` from /proc (psutil's figure without the dependency)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine (all cores, every process) from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICK


def _cpu_all(pids: dict[str, int]) -> dict[str, float]:
    return {**{name: _cpu_s(pid) for name, pid in pids.items()}, "machine": _machine_busy_s()}


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


class _Committed:
    """The node stage group's committed offsets on the events topic, through one long-lived client."""

    def __init__(self, settings: StreamSettings) -> None:
        self.topic = settings.topic(EVENTS)
        self.client = AIOKafkaConsumer(
            bootstrap_servers=settings.broker, group_id=settings.app_id, enable_auto_commit=False
        )

    async def total(self, parts: list[int]) -> int:
        got = [await self.client.committed(TopicPartition(self.topic, p)) for p in parts]
        return sum(o or 0 for o in got)


async def _sample(res: SoakResult, t: float, ends: _Ends, done: _Committed, procs: dict[str, Any]) -> int:
    """Record one lag and memory sample; returns the committed total it read."""
    committed = await done.total(list(ends.ends))
    res.lag.append(max(0, sum(ends.ends.values()) - committed))
    res.lag_t.append(round(t, 2))
    for w, proc in procs.items():
        if proc.poll() is None:
            res.rss_mb.setdefault(w, []).append(_rss_mb(proc.pid))
    return committed


async def _phase(
    producer: AIOKafkaProducer,
    topic: str,
    names: list[str],
    first: int,
    rate: float,
    duration_s: float,
    sample_s: float,
    ends: _Ends,
    done: _Committed,
    procs: dict[str, Any],
    pids: dict[str, int],
) -> SoakResult:
    """Produce ``rate`` events/s for ``duration_s`` (event ids from ``first``), sampling as it goes."""
    res = SoakResult(duration_s, rate)
    cpu0 = _cpu_all(pids)
    start = time.monotonic()
    committed0 = await _sample(res, 0.0, ends, done, procs)
    next_sample = start + sample_s
    i = 0
    while (now := time.monotonic()) - start < duration_s:
        due = int((now - start) * rate)
        while i < due:
            node = names[(first + i) % len(names)]
            fut = await producer.send(topic, _event(first + i, node, "s"), key=node.encode())
            fut.add_done_callback(ends.ack)
            i += 1
        if now >= next_sample:
            await producer.flush()
            await _sample(res, now - start, ends, done, procs)
            next_sample = now + sample_s
        await asyncio.sleep(0.01)
    await producer.flush()
    elapsed = time.monotonic() - start
    committed = await _sample(res, elapsed, ends, done, procs)
    cpu1 = _cpu_all(pids)
    res.cpu_s = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1}
    res.duration_s, res.sent, res.achieved_rate = elapsed, i, i / elapsed
    res.processed = committed - committed0
    return res


async def _drain(res: SoakResult, ends: _Ends, done: _Committed, timeout_s: float) -> None:
    """Wait until the node stage committed everything produced (lag 0) or ``timeout_s`` passed."""
    stopped = time.monotonic()
    while True:
        res.final_lag = max(0, sum(ends.ends.values()) - await done.total(list(ends.ends)))
        if res.final_lag == 0:
            res.drain_s = time.monotonic() - stopped
            break
        if time.monotonic() - stopped >= timeout_s:
            break
        await asyncio.sleep(0.5)
    res.after_s = time.monotonic() - stopped


async def run_load(
    settings: StreamSettings,
    procs: dict[str, subprocess.Popen[bytes]],
    phases: list[tuple[float, float, float]],
    nodes: int,
    sample_s: float = 2.0,
    pids: dict[str, int] | None = None,
    warmup_s: float = 60.0,
) -> list[SoakResult]:
    """Inventory for ``nodes`` nodes (its backlog drained, up to ``warmup_s``), then one phase per
    ``(rate, duration_s, drain_timeout_s)``, each followed by its drain wait, into running workers
    ``procs``. ``pids``: more processes whose CPU to report (the broker); this process, the load
    generator and lag sampler, is always reported."""
    ends = _Ends()
    names = [f"soak-{n:05d}" for n in range(nodes)]
    watched = {"load generator": os.getpid(), **(pids or {}), **{w: p.pid for w, p in procs.items()}}
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker, linger_ms=20, max_batch_size=262_144)
    done = _Committed(settings)
    await producer.start()
    await done.client.start()
    topic = settings.topic(EVENTS)
    out: list[SoakResult] = []
    try:
        for i, node in enumerate(names):
            (await producer.send(topic, _event(i, node, "inv"), key=node.encode())).add_done_callback(
                ends.ack
            )
        await producer.flush()
        # Warm-up: every node's first event allocates its state; phases start from an empty backlog.
        await _drain(SoakResult(0.0, 0.0), ends, done, warmup_s)
        first = 0
        for rate, duration_s, drain_s in phases:
            res = await _phase(producer, topic, names, first, rate, duration_s, sample_s, ends, done, procs,
                               watched)  # fmt: skip
            first += res.sent
            await _drain(res, ends, done, drain_s)
            res.exited = {w: p.returncode for w, p in procs.items() if p.poll() is not None}
            out.append(res)
    finally:
        await done.client.stop()
        await producer.stop()
    return out


def soak(
    settings: StreamSettings,
    n_workers: int,
    log_dir: Path,
    phases: list[tuple[float, float, float]],
    nodes: int,
    sample_s: float = 2.0,
    pids: dict[str, int] | None = None,
) -> list[SoakResult]:
    """Create topics, start ``n_workers`` workers, run the phases, stop the workers."""
    asyncio.run(create_topics(settings))
    procs = {
        f"worker-{i}": workers.start_worker(settings, i, log_dir / f"worker-{i}.log")
        for i in range(n_workers)
    }
    try:
        time.sleep(8.0)  # group join and recovery before the clock starts
        return asyncio.run(run_load(settings, procs, phases, nodes, sample_s, pids))
    finally:
        for p in procs.values():
            workers.stop(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="duration of each rate's phase")
    ap.add_argument("--rate", type=float, nargs="+", default=[10 * STEADY_RATE_10K],
                    help="offered events/s; several rates run one after the other (a sweep)")  # fmt: skip
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--drain-timeout", type=float, default=600.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="breakfix-soak-"))
    phases = [(r, args.minutes * 60, args.drain_timeout) for r in args.rate]
    with EmbeddedBroker(log_dir=work) as broker:
        settings = StreamSettings(broker=broker.url, app_id="soak", data_dir=work / "data", web_port=0,
                                  session_timeout_s=10, heartbeat_s=1,
                                  keys_dir=single_host_keys(work / "keys"))  # fmt: skip
        pids = {"broker": broker.proc.pid} if broker.proc else {}
        runs = soak(settings, args.workers, work, phases, args.nodes, sample_s=5.0, pids=pids)
    phases_out = [{**res.summary(), "lag_samples": res.lag, "rss_mb": res.rss_mb} for res in runs]
    for phase in phases_out:
        print(json.dumps(phase, indent=2))
    print(json.dumps({"logs": str(work)}))
    results.write(
        "soak", {"workers": args.workers, "nodes": args.nodes, "phases": phases_out, "logs": str(work)}
    )


if __name__ == "__main__":
    main()
