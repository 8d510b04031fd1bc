"""Streaming throughput and latency, in one run on one topic of the embedded Tansu broker.

Throughput (events/s, same pre-filled events topic): raw aiokafka consumption (one consumer: the
client's ceiling), no-op Faust workers (the framework's own ceiling) and node-stage workers
(``streams.pipeline.workers``), as many no-op workers as node-stage ones (``--workers``) in one consumer
group each, built alike (``BreakfixApp``, the same settings) and measured alike (first to last event
read, CPU of all the workers' threads over that span). Latency: event→decision p50/p99 with live
traffic from a 10,000-node fleet (``--fleet-nodes``) at its steady rate (≈700 events/s) and at 5x,
measured from sending a decisive Xid 79 to reading its decision. The result is printed and written
to ``.reliability/bench_stream.json`` (``bench/results.py``).

Per probe, the latency is split into hops from broker timestamps: send -> proposal record (node stage)
and proposal -> decision record (guard, including the watermark wait). Throughput alternates no-op and
node-stage rounds (``--repeat``) and reports the best of each, so load from other processes on a
shared machine hits both alike.

Run: .venv/bin/python bench/bench_stream.py [--events 60000] [--latency-s 20] [--repeat 2] [--workers 1]
     [--fleet-nodes 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

try:
    from bench import results
except ModuleNotFoundError:  # run as a script (python bench/x.py): bench/ itself is on sys.path
    import results  # type: ignore[no-redef]

from schemas.topics import Topic
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.keys import single_host_keys
from streams.pipeline import workers
from streams.pipeline.guard_stage import read_progress
from streams.settings import StreamSettings

EVENTS, DECISIONS, PROPOSALS = Topic.EVENTS, Topic.DECISIONS, Topic.PROPOSALS
MARKERS = 24
"""Nodes whose last heartbeat closes the pre-filled stream."""


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def inventory(node: str, t: float, i: int) -> dict[str, Any]:
    data = {"pool": f"pool{i % 4}", "rack": f"rack{i % 50}", "sku": "H100", "gpus": 8}
    return {
        "id": f"inv-{node}",
        "type": "node.inventory",
        "source": "bench",
        "time": iso(t),
        "node": node,
        "data": data,
    }


def sample(node: str, t: float, k: int) -> dict[str, Any]:
    gpus = [{"index": g, "temp_c": 55 + g, "power_w": 400, "util": 80, "sbe_volatile": 0} for g in range(8)]
    return {
        "id": f"s-{node}-{k}",
        "type": "gpu.sample",
        "source": "bench",
        "time": iso(t),
        "node": node,
        "data": {"gpus": gpus},
    }


def heartbeat(node: str, t: float, k: int) -> dict[str, Any]:
    data = {"collector": "dcgm", "interval_s": 60}
    return {
        "id": f"h-{node}-{k}",
        "type": "agent.heartbeat",
        "source": "bench",
        "time": iso(t),
        "node": node,
        "data": data,
    }


def telemetry(node: str, t: float, k: int) -> dict[str, Any]:
    """Alternating scrape and heartbeat: a live agent (silence would itself be evidence)."""
    return sample(node, t, k) if (k // 1000) % 2 else heartbeat(node, t, k)


def xid79(node: str, t: float) -> dict[str, Any]:
    return {
        "id": f"x-{node}",
        "type": "gpu.xid",
        "source": "bench",
        "time": iso(t),
        "node": node,
        "data": {"gpu": 0, "xid": 79},
    }


async def fill(s: StreamSettings, n_events: int, n_nodes: int, start: float) -> tuple[int, float]:
    """Inventory, then scrapes and heartbeats round-robin, one per node per 5 s of event time, then a
    heartbeat at the end time from marker nodes; returns (events, end time)."""
    p = AIOKafkaProducer(bootstrap_servers=s.broker, linger_ms=20, max_batch_size=256 * 1024)
    await p.start()
    topic, sent = s.topic(EVENTS), 0
    try:
        nodes = [f"n{i:05d}" for i in range(n_nodes)] + [f"marker{i:02d}" for i in range(MARKERS)]
        for i, node in enumerate(nodes):
            await p.send(topic, orjson.dumps(inventory(node, start, i)), key=node.encode())
            sent += 1
        k = 0
        while sent < n_events:
            node = nodes[k % n_nodes]
            await p.send(
                topic, orjson.dumps(telemetry(node, start + 1 + 5 * (k // n_nodes), k)), key=node.encode()
            )
            sent += 1
            k += 1
        end = start + 2 + 5 * (k // n_nodes)
        for node in nodes[n_nodes:]:
            await p.send(topic, orjson.dumps(heartbeat(node, end, 0)), key=node.encode())
            sent += 1
        await p.flush()
    finally:
        await p.stop()
    return sent, end


async def raw_rate(s: StreamSettings, n: int) -> float:
    c = AIOKafkaConsumer(
        s.topic(EVENTS), bootstrap_servers=s.broker, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await c.start()
    try:
        got, t0 = 0, None
        while got < n:
            for msgs in (await c.getmany(timeout_ms=500, max_records=10_000)).values():
                t0 = t0 or time.perf_counter()
                for m in msgs:
                    orjson.loads(m.value)
                got += len(msgs)
        return got / (time.perf_counter() - (t0 or 0))
    finally:
        await c.stop()


def noop_worker(group: str, out: str) -> None:
    """A worker whose agent does nothing: the framework's own ceiling on this machine, built as the
    node-stage workers are (``BreakfixApp``, the same fetch wait, session and heartbeat settings from
    the same BREAKFIX_* environment) and joined to ``group`` with the round's other no-op workers.
    Every 0.2 s it writes how many events it has read and the wall times of its first and latest one
    to ``out``; its data folder sits next to ``out`` (the bench's temp folder)."""
    import faust

    from streams.kafka.embedded_broker import free_port
    from streams.pipeline.compat import BreakfixApp

    s = StreamSettings()
    app = BreakfixApp(
        group,
        fetch_max_wait_ms=s.fetch_max_wait_ms,
        datadir=str(Path(out).parent / f"noop-{os.getpid()}-data"),
        broker=f"kafka://{s.broker}",
        broker_session_timeout=s.session_timeout_s,
        broker_heartbeat_interval=s.heartbeat_s,
        web_port=free_port(),
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
    )
    t = app.topic(
        s.topic(EVENTS), key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    state = {"n": 0, "t0": 0.0, "t1": 0.0}

    @app.agent(t)
    async def noop(stream: Any) -> None:
        async for _ in stream:
            state["t1"] = time.time()  # one clock read per event: the count's only cost besides the loop
            if state["n"] == 0:
                state["t0"] = state["t1"]
            state["n"] += 1

    @app.timer(0.2)  # type: ignore[untyped-decorator]
    async def report() -> None:
        tmp = Path(f"{out}.tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(out)

    _ = (noop, report)
    faust.Worker(app, loglevel="warning").execute_from_commandline()


def noop_rate(s: StreamSettings, n: int, tmp: Path, k: int = 0, n_workers: int = 1) -> tuple[float, float]:
    """(events/s, CPU µs per event) of ``n_workers`` no-op workers in one group in round ``k``,
    measured as the node stage's are: from the first event read to the last, CPU of all the workers'
    threads sampled from /proc over the same span."""
    group = f"bench-noop-{os.getpid()}-{k}"
    outs = [tmp / f"noop-{k}-{i}.json" for i in range(n_workers)]
    env = {**os.environ, **workers.settings_env(s)}
    procs = []
    for i, out in enumerate(outs):
        with open(tmp / f"noop-{k}-{i}.log", "wb") as log:
            args = [sys.executable, __file__, "--noop-worker", group, str(out)]
            procs.append(
                subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
            )
    cpu = CpuClock([p.pid for p in procs])
    try:
        deadline = time.monotonic() + 300
        states: list[dict[str, float]] = []
        while sum(st["n"] for st in states) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no-op workers read {sum(st['n'] for st in states)} of {n} events")
            time.sleep(0.2)
            states = [json.loads(o.read_text()) for o in outs if o.exists()]
        cpu.stop()
        t0 = min(st["t0"] for st in states if st["n"])
        t1 = max(st["t1"] for st in states)
        return n / (t1 - t0), 1e6 * cpu.between(t0, t1) / n
    finally:
        cpu.stop()
        for proc in procs:
            workers.stop(proc)


class CpuClock:
    """Samples the CPU seconds (all threads) of processes while a round runs, so the CPU spent between
    two wall times can be read afterwards: on a shared machine CPU per event varies far less than
    events per wall second, which other processes' load distorts."""

    def __init__(self, pids: list[int], every_s: float = 0.02) -> None:
        self.pids, self.every_s = pids, every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _cpu(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._cpu()))
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, t0: float, t1: float) -> float:
        """CPU seconds spent from wall time ``t0`` to ``t1`` (nearest samples)."""

        def at(t: float) -> float:
            return min(self.samples, key=lambda s: abs(s[0] - t))[1]

        return at(t1) - at(t0)


async def progress_times(
    s: StreamSettings, end: float, timeout_s: float, since: float
) -> tuple[float, float]:
    """(first progress mark, moment every partition reported progress past ``end``), as broker
    timestamps of the guard's input topic: the node stage's own account of how far it has read.
    Marks older than ``since`` (an earlier round on the same topic) are skipped."""
    c = AIOKafkaConsumer(
        s.topic(PROPOSALS), bootstrap_servers=s.broker, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await c.start()
    try:
        first, bounds, deadline = 0.0, {}, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=100)).values():
                for m in msgs:
                    if dict(m.headers).get("breakfix-kind") != b"progress" or m.timestamp < since * 1000:
                        continue
                    first = first or m.timestamp / 1000
                    bounds.update({p: k[0] for p, k in read_progress(m.value).items()})
                    # Event times travel as RFC 3339 with microseconds: compare at that precision.
                    if len(bounds) == 12 and min(bounds.values()) >= end - 1e-5:
                        return first, m.timestamp / 1000
        raise TimeoutError(f"progress {bounds}")
    finally:
        await c.stop()


def node_stage_rate(
    s: StreamSettings, n: int, end: float, tmp: Path, n_workers: int = 1
) -> tuple[float, float]:
    """(events/s, CPU µs per event) of ``n_workers`` node-stage workers in one group (sums over
    workers)."""
    since = time.time()
    procs = [workers.start_worker(s, i, tmp / f"node-stage-{i}.log") for i in range(n_workers)]
    cpu = CpuClock([p.pid for p in procs])
    try:
        t0, t1 = asyncio.run(progress_times(s, end, 600, since))
        cpu.stop()
        return n / (t1 - t0), 1e6 * cpu.between(t0, t1) / n
    finally:
        cpu.stop()
        for proc in procs:
            workers.stop(proc)


async def live(
    s: StreamSettings, rate: float, seconds: float, n_nodes: int, facts: dict[str, float]
) -> list[dict[str, float]]:
    """Live traffic at ``rate`` events/s (event time = now); one Xid 79 on a fresh node every 0.5 s,
    once every node's inventory has registered (how long that took goes into ``facts``, and so do the
    probes left without a decision at the end, and how many of those got as far as a proposal).

    Per probe: the wall time it was sent, the broker timestamps of its proposal (node stage done) and
    of its decision (guard done), and when this reader got the decision: the hops of the latency.
    """
    # The fleet's telemetry arrives batched, as collectors send it (the demo feed lingers 20 ms too):
    # Tansu's produce request costs more the more its memory engine holds (one core at ~200 requests/s
    # once a topic holds 140k records), so a 2 ms linger made the broker the bottleneck within a minute.
    # The probes go alone through a producer that does not linger, so no batching is in their latency.
    p = AIOKafkaProducer(bootstrap_servers=s.broker, linger_ms=20)
    probe_p = AIOKafkaProducer(bootstrap_servers=s.broker, linger_ms=0)
    c = AIOKafkaConsumer(
        s.topic(DECISIONS),
        s.topic(PROPOSALS),
        bootstrap_servers=s.broker,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=s.fetch_max_wait_ms,  # a downstream consumer tuned like the workers
    )
    await p.start()
    await probe_p.start()
    await c.start()
    for tp in c.assignment():
        await c.position(tp)  # "latest" fixed now, before the fleet's inventory is sent
    sent_at: dict[str, float] = {}
    proposed: dict[str, float] = {}
    registered: set[str] = set()
    latencies: list[dict[str, float]] = []

    async def read() -> None:
        while True:
            for tp, msgs in (await c.getmany(timeout_ms=100)).items():
                for m in msgs:
                    if tp.topic == s.topic(PROPOSALS):
                        kind = dict(m.headers).get("breakfix-kind")
                        if kind == b"proposal" and m.key:
                            proposed.setdefault(m.key.decode(), m.timestamp / 1000)
                        elif kind == b"registration" and m.key:
                            registered.add(m.key.decode())
                        continue
                    node = orjson.loads(m.value)["node"]
                    if node in sent_at:
                        t0 = sent_at.pop(node)
                        latencies.append({
                            "total": time.time() - t0,
                            "node_stage": proposed.get(node, math.nan) - t0,
                            "guard": m.timestamp / 1000 - proposed.get(node, math.nan),
                        })  # fmt: skip

    reader = asyncio.create_task(read())
    try:
        topic, nodes = s.topic(EVENTS), [f"live{i:05d}" for i in range(n_nodes)]
        probes = [f"probe{i:04d}" for i in range(int(seconds * 2) + 1)]
        for i, node in enumerate(nodes + probes):
            await p.send(topic, orjson.dumps(inventory(node, time.time(), i)), key=node.encode())
        await p.flush()
        # Steady state: the fleet's nodes registered (10,000 inventories are a start-up burst that
        # the node stage and guard absorb once, not the steady rate), then a moment to settle.
        t_inv = last_t = time.perf_counter()
        last_n = 0
        while len(registered) < len(nodes) + len(probes) and time.perf_counter() - last_t < 5.0:
            await asyncio.sleep(0.1)  # until all are seen, or none for 5 s (this reader missed some)
            if len(registered) > last_n:
                last_n, last_t = len(registered), time.perf_counter()
        facts["registered"], facts["registration_s"] = len(registered), last_t - t_inv
        await asyncio.sleep(3.0)
        t_start, k, probe = time.perf_counter(), 0, 0
        while (elapsed := time.perf_counter() - t_start) < seconds:
            due = int(elapsed * rate)
            while k < due:
                node = nodes[k % n_nodes]
                await p.send(topic, orjson.dumps(telemetry(node, time.time(), k)), key=node.encode())
                k += 1
            if elapsed >= probe * 0.5 and probe < len(probes):
                node = probes[probe]
                sent_at[node] = time.time()
                await probe_p.send(topic, orjson.dumps(xid79(node, time.time())), key=node.encode())
                probe += 1
            await asyncio.sleep(0.005)
        await asyncio.sleep(5.0)
        facts["unanswered"] = len(sent_at)
        facts["unanswered_proposed"] = sum(node in proposed for node in sent_at)
    finally:
        reader.cancel()
        await p.stop()
        await probe_p.stop()
        await c.stop()
    return latencies


def _ms(seconds: float) -> float:
    """Milliseconds; infinity (no decision within the run's 5 s tail) stays infinity: JSON ``Infinity``."""
    return round(1000 * seconds, 1) if math.isfinite(seconds) else math.inf


def latency(
    broker: str, rate: float, seconds: float, tmp: Path, tag: str, n_workers: int = 1, n_nodes: int = 10_000
) -> dict[str, float]:
    s = StreamSettings(
        broker=broker,
        app_id=f"bench-lat-{tag}",
        topic_prefix=f"lat{tag}.",
        data_dir=tmp / tag,
        web_port=0,
        keys_dir=single_host_keys(tmp / "keys"),
    )
    asyncio.run(create_topics(s))
    procs = [workers.start_worker(s, i, tmp / f"latency-{tag}-{i}.log") for i in range(n_workers)]
    try:
        time.sleep(12.0 + 6.0 * (n_workers - 1))  # worker start and group join (a second join: rebalance)
        facts: dict[str, float] = {}
        probes = asyncio.run(live(s, rate, seconds, n_nodes, facts))
    finally:
        for proc in procs:
            workers.stop(proc)
    out: dict[str, float] = {"rate": rate, "workers": n_workers, "nodes": n_nodes, "decisions": len(probes)}
    out["registered"] = facts["registered"]
    out["registration_s"] = round(facts["registration_s"], 1)
    out["unanswered"], out["unanswered_proposed"] = facts["unanswered"], facts["unanswered_proposed"]
    for hop in ("total", "node_stage", "guard"):
        lat = sorted(p[hop] for p in probes if not math.isnan(p[hop]))
        if hop == "total":  # a probe without a decision counts, as slower than every answered one
            lat += [math.inf] * int(facts["unanswered"])
        if lat:
            out[f"{hop}_p50_ms"] = _ms(statistics.median_low(lat))
            out[f"{hop}_p90_ms"] = _ms(lat[min(len(lat) - 1, int(0.90 * len(lat)))])
            out[f"{hop}_p99_ms"] = _ms(lat[min(len(lat) - 1, int(0.99 * len(lat)))])
            out[f"{hop}_max_ms"] = _ms(lat[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--latency-s", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=1, help="node-stage workers (throughput and latency)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument(
        "--fleet-nodes",
        type=int,
        default=10_000,
        help="nodes sending the live traffic of the latency runs: how many node states the stage keeps and "
        "checkpoints (the rate is the fleet's, so each node sends 700/N events/s at the steady rate)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="alternating no-op/node-stage rounds; best of each")
    ap.add_argument("--noop-worker", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.noop_worker:
        noop_worker(*a.noop_worker)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    with EmbeddedBroker(log_dir=tmp) as b:
        s = StreamSettings(
            broker=b.url,
            app_id="bench-node",
            topic_prefix="bench.",
            data_dir=tmp / "data",
            web_port=0,
            keys_dir=single_host_keys(tmp / "keys"),
        )
        asyncio.run(create_topics(s))
        n, end = asyncio.run(fill(s, a.events, a.nodes, time.time() - 3600))
        result: dict[str, Any] = {"events": n}
        result["raw_aiokafka_per_s"] = round(asyncio.run(raw_rate(s, n)))
        noop, stage, noop_cpu, stage_cpu = [], [], [], []
        for k in range(a.repeat):
            # Alternate, so that load from other processes on a shared machine hits both alike.
            rate, cpu_us = noop_rate(s, n, tmp, k, a.workers)
            noop.append(rate)
            noop_cpu.append(cpu_us)
            sk = s.model_copy(update={"app_id": f"bench-node{k}", "data_dir": tmp / f"data{k}"})
            rate, cpu_us = node_stage_rate(sk, n, end, tmp, a.workers)
            stage.append(rate)
            stage_cpu.append(cpu_us)
        result["workers"] = a.workers  # no-op and node stage alike
        result["noop_faust_per_s"] = round(max(noop))
        result["node_stage_per_s"] = round(max(stage))
        result["node_stage_vs_noop"] = round(max(stage) / max(noop), 2)
        result["vs_noop_per_round"] = [round(x / y, 2) for x, y in zip(stage, noop, strict=True)]
        # CPU per event (all threads of the worker processes; the broker's share not included).
        result["noop_cpu_us_per_event"] = round(min(noop_cpu), 1)
        result["node_stage_cpu_us_per_event"] = round(min(stage_cpu), 1)
        result["cpu_vs_noop"] = round(min(noop_cpu) / min(stage_cpu), 2)
        if not a.skip_latency:
            result["latency_700"] = latency(b.url, 700, a.latency_s, tmp, "x1", a.workers, a.fleet_nodes)
            result["latency_3500"] = latency(b.url, 3500, a.latency_s, tmp, "x5", a.workers, a.fleet_nodes)
    print(json.dumps(result, indent=2))
    print(f"written to {results.write('stream', result)}", file=sys.stderr)


if __name__ == "__main__":
    main()
