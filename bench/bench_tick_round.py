"""A minute tick while many nodes are held: how long the pipeline takes to decide the whole tick round.

Every node whose quarantine is held (pool headroom, an incident freeze) proposes again at each tick
of event time, so one tick brings the guard one item per held node, all at one event time. The
benchmark holds the nodes of one pool (``--held``), sends the input that runs the next tick and times
until every re-proposal's decision is read. The baseline is the same with a pool of one node, in the
same run on the same workers: one trip around the pipeline (node stage -> guard -> decisions). A
ratio near 1 means the round is decided as one batch; near the number of held nodes, one node per
round trip (what ticks keyed like events would give).

Run: .venv/bin/python -m bench.bench_tick_round [--held 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import results
from bench.bench_stream import DECISIONS, EVENTS, PROPOSALS, iso, xid79
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.keys import single_host_keys
from streams.pipeline import workers
from streams.settings import StreamSettings

TICK_S = 60.0
"""The default policy's tick: event time is laid out on its minute grid."""
FILLERS = [f"fill{i:04d}" for i in range(200)]
"""Healthy nodes that send alongside each trigger, so every partition's clock moves (12 partitions
each miss all 200 with odds ~3e-7): a partition that saw nothing since the previous minute would
keep the guard waiting for it."""


def inventory(node: str, pool: str, t: float, k: int) -> dict[str, Any]:
    data = {"pool": pool, "rack": f"{pool}-r{k % 8}", "sku": "H100", "gpus": 8}
    return {"id": f"inv-{node}-{int(t)}", "type": "node.inventory", "source": "bench", "time": iso(t),
            "node": node, "data": data}  # fmt: skip


class Pipeline:
    """A producer and a reader of proposals (registrations) and decisions, positioned at the end."""

    def __init__(self, s: StreamSettings) -> None:
        self.s = s
        self.p = AIOKafkaProducer(bootstrap_servers=s.broker, linger_ms=0)
        self.c = AIOKafkaConsumer(
            s.topic(DECISIONS),
            s.topic(PROPOSALS),
            bootstrap_servers=s.broker,
            auto_offset_reset="latest",
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )
        self.registered: set[str] = set()
        self.decided: dict[str, float] = {}
        """Decision id -> when this reader got it."""
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Pipeline:
        await self.p.start()
        await self.c.start()
        for tp in self.c.assignment():
            await self.c.position(tp)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.p.stop()
        await self.c.stop()

    async def _read(self) -> None:
        while True:
            for tp, msgs in (await self.c.getmany(timeout_ms=50)).items():
                now = time.perf_counter()
                for m in msgs:
                    if tp.topic == self.s.topic(PROPOSALS):
                        if dict(m.headers).get("breakfix-kind") == b"registration" and m.key:
                            self.registered.add(m.key.decode())
                    else:
                        self.decided.setdefault(orjson.loads(m.value)["id"], now)

    async def send(self, events: list[dict[str, Any]]) -> float:
        for ev in events:
            await self.p.send(self.s.topic(EVENTS), orjson.dumps(ev), key=ev["node"].encode())
        await self.p.flush()
        return time.perf_counter()

    async def until(self, done: Any, timeout_s: float, what: str) -> None:
        deadline = time.perf_counter() + timeout_s
        while not done():
            if time.perf_counter() > deadline:
                raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}: see the worker logs")
            await asyncio.sleep(0.02)


def _fillers(t: float) -> list[dict[str, Any]]:
    return [inventory(n, "fill", t, k) for k, n in enumerate(FILLERS)]


def _decided(pipe: Pipeline, nodes: list[str], cause: str) -> list[float]:
    """When each decision of ``nodes`` answering ``cause`` (an event id's stem: a tick's or an Xid's)
    was read; decision ids are ``d-<node>:<cause>:<trigger>``."""
    wanted = {f"d-{n}:{cause.format(node=n)}" for n in nodes}
    return [at for d, at in pipe.decided.items() if d.rsplit(":", 1)[0] in wanted]


async def tick_round(pipe: Pipeline, nodes: list[str], pool: str, t_xid: float) -> dict[str, float]:
    """Hold ``nodes`` (an Xid 79 each at ``t_xid``), then run the tick after and time its decisions."""
    xid = f"x-{{node}}-{int(t_xid)}"
    await pipe.send([xid79(n, t_xid) | {"id": xid.format(node=n)} for n in nodes] + _fillers(t_xid))
    await pipe.until(lambda: len(_decided(pipe, nodes, xid)) == len(nodes), 120, "the Xid decisions")
    await asyncio.sleep(1.0)
    tick = math.ceil((t_xid + TICK_S) / TICK_S) * TICK_S  # a node's checks fall due a tick after its event
    cause = f"tick{int(tick)}"
    trigger = [inventory(n, pool, tick + 10, k) for k, n in enumerate(nodes)]
    t_sent = await pipe.send(trigger + _fillers(tick + 10))
    await pipe.until(lambda: bool(_decided(pipe, nodes, cause)), 180, "the tick's first decision")
    quiet_since, seen = time.perf_counter(), 0
    while time.perf_counter() - quiet_since < 5.0:  # the round is over when none came for 5 s
        await asyncio.sleep(0.1)
        if (n := len(_decided(pipe, nodes, cause))) > seen:
            quiet_since, seen = time.perf_counter(), n
    ats = sorted(_decided(pipe, nodes, cause))
    return {"nodes": len(nodes), "tick_decisions": len(ats), "first_s": round(ats[0] - t_sent, 3),
            "last_s": round(ats[-1] - t_sent, 3)}  # fmt: skip


async def measure(s: StreamSettings, held: int) -> dict[str, Any]:
    base = math.floor(time.time() / TICK_S) * TICK_S - 1800
    solo, pool = ["solo0000"], [f"held{i:04d}" for i in range(held)]
    async with Pipeline(s) as pipe:
        invs = [inventory(n, "solo", base, 0) for n in solo] + [
            inventory(n, "held", base, k) for k, n in enumerate(pool)
        ]
        await pipe.send(invs)
        await pipe.until(lambda: len(pipe.registered) >= len(invs), 120, "the inventories' registrations")
        baseline = await tick_round(pipe, solo, "solo", base + 10)
        storm = await tick_round(pipe, pool, "held", base + 130)
    return {"baseline": baseline, "held": storm,
            "last_vs_baseline": round(storm["last_s"] / baseline["last_s"], 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--held", type=int, default=100, help="nodes of the pool whose quarantines are held")
    ap.add_argument("--workers", type=int, default=2, help="node-stage workers")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tick-"))
    with EmbeddedBroker(log_dir=tmp) as b:
        s = StreamSettings(
            broker=b.url,
            app_id="bench-tick",
            topic_prefix="tick.",
            data_dir=tmp / "data",
            web_port=0,
            keys_dir=single_host_keys(tmp / "keys"),
        )
        asyncio.run(create_topics(s))
        procs = [workers.start_worker(s, i, tmp / f"worker-{i}.log") for i in range(a.workers)]
        try:
            time.sleep(12.0 + 6.0 * (a.workers - 1))  # worker start and group join, as bench_stream waits
            result = asyncio.run(measure(s, a.held))
        finally:
            for proc in procs:
                workers.stop(proc)
    print(json.dumps({"workers": a.workers, **result}, indent=2))
    results.write("tick_round", {"workers": a.workers, **result})


if __name__ == "__main__":
    main()
