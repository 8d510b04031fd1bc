"""Sink throughput vs a raw bulk insert of the same rows into the same backend, in one run.

    .venv/bin/python bench/bench_sink.py --events 100000

Produces N telemetry events to an embedded Tansu broker, then (1) maps them to rows and inserts all
of them with one bulk insert (the baseline: the cheapest way those rows can reach the engine), and
(2) runs the real sink stage (aiokafka consume → map → batched idempotent inserts → offset commit)
over the same messages into a fresh database of the same engine. Reported: rows/s of each and their
ratio (goal ≥ 0.5). The sink's figure spans first record received → last commit (the consumer-group
join before the first record is excluded: it is a start-up cost, not throughput). Baseline and sink
alternate for ``--repeat`` rounds (fresh database and consumer group each) and the best of each is
compared: on a shared machine a single pair of runs swung the ratio between 0.3 and 0.55.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import TOPICS
from streams.embedded_broker import EmbeddedBroker
from streams.sink import SinkConfig, SinkCore, run_sink
from streams.store.base import Store
from streams.store.dsn import open_store
from streams.store.migrate import migrate
from streams.store.rows import COLUMNS, TableRow, group_by_table, rows_for_message
from streams.store.spool import Spool


def event(i: int) -> bytes:
    gpus = [
        {"index": g, "temp_c": 60.0 + g, "power_w": 300.5, "util": 97.0, "sbe_volatile": 0} for g in range(8)
    ]
    return orjson.dumps({
        "id": f"ev-{i}", "type": "gpu.sample", "source": "dcgm",
        "time": f"2025-03-01T00:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100:02d}0Z",
        "node": f"node-{i % 1000:04d}", "data": {"gpus": gpus},
    })  # fmt: skip


async def produce(bootstrap: str, prefix: str, values: list[bytes]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics(
        [NewTopic(prefix + t.name, 12 if t.name == "breakfix.events" else 1, 1) for t in TOPICS]
    )
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    for i, v in enumerate(values):
        await producer.send(prefix + "breakfix.events", v, key=f"node-{i % 1000:04d}".encode())
    await producer.flush()
    await producer.stop()


def raw_insert_s(store: Store, rows: list[TableRow]) -> float:
    """Seconds for one bulk insert of already-mapped rows into an empty table (engine warmed first)."""
    store.insert("events", COLUMNS["events"], [r for _, r in rows[:1000]])
    store.command(f"TRUNCATE TABLE {store.database}.events")
    t0 = time.perf_counter()
    for table, table_rows in group_by_table(rows).items():
        store.insert(table, COLUMNS[table], table_rows)
    return time.perf_counter() - t0


def sink_run(broker: str, store: Store, n: int, batch_rows: int, group: str) -> SinkCore:
    """The real sink stage over the topic from its start (a new consumer group), until n rows are in."""
    core = SinkCore(store, Spool(tempfile.mkdtemp(prefix="bench-spool-")))
    cfg = SinkConfig(bootstrap=broker, group_id=group, topic_prefix="bench.", batch_rows=batch_rows,
                     batch_interval_s=0.5)  # fmt: skip

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(cfg, core, stop))
        while core.stats.rows["events"] < n and not task.done():
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(run())
    return core


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch-rows", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3, help="alternating baseline/sink rounds; best of each")
    p.add_argument("--store", default=None, help="store DSN (default: chdb in a temporary directory)")
    args = p.parse_args()
    dsn = args.store or f"chdb://{tempfile.mkdtemp(prefix='bench-sink-')}"
    base = dsn.split("?")[0]
    values = [event(i) for i in range(args.events)]
    raw_s: list[float] = []
    sink_s: list[float] = []
    with EmbeddedBroker() as broker:
        asyncio.run(produce(broker.url, "bench.", values))
        now = datetime.now(UTC)
        map_t0 = time.perf_counter()
        rows = [
            r for i, v in enumerate(values) for r in rows_for_message("breakfix.events", v, f"p@{i}", now)
        ]
        map_s = time.perf_counter() - map_t0
        for k in range(args.repeat):
            # Alternate, so that load from other processes on a shared machine hits both alike.
            raw_store = open_store(f"{base}?database=bench_raw{k}")
            migrate(raw_store)
            raw_s.append(raw_insert_s(raw_store, rows))
            sink_store = open_store(f"{base}?database=bench_sink{k}")
            migrate(sink_store)
            core = sink_run(broker.url, sink_store, args.events, args.batch_rows, f"bench{k}")
            assert core.stats.first_record_at is not None and core.stats.last_flush_at is not None
            sink_s.append(core.stats.last_flush_at - core.stats.first_record_at)
            stored = sink_store.query(f"SELECT count() FROM bench_sink{k}.events FINAL").rows[0][0]
            assert stored == args.events, f"sink stored {stored} of {args.events} rows"

    result = {
        "events": args.events,
        "backend": raw_store.kind,
        "rounds": args.repeat,
        "raw_bulk_insert_rows_per_s": round(args.events / min(raw_s)),
        "sink_rows_per_s": round(args.events / min(sink_s)),
        "ratio": round(min(raw_s) / min(sink_s), 3),
        "ratio_per_round": [round(r / s, 3) for r, s in zip(raw_s, sink_s, strict=True)],
        "sink_batches": core.stats.batches,
        "mapping_rows_per_s": round(args.events / map_s),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
