"""Sink throughput vs a raw bulk insert of the same rows into the same backend, in one run.

    .venv/bin/python bench/bench_sink.py --events 100000

Produces N telemetry events to an embedded Tansu broker, then runs, each into a fresh database of
the same engine:

- ``rows``: the rows already mapped in Python (before the clock starts), inserted with one bulk
  insert of row tuples (clickhouse-connect's Native format);
- ``staging``: the same published values inserted at once, with no Kafka, through the path the sink
  uses (one Arrow insert into ``events_ingest``, checked and mapped by ClickHouse's views);
- the real sink stage (aiokafka consume → Arrow insert per batch with its dedup token → offset
  commit) over the same messages.

The baseline is the faster of ``rows`` and ``staging``: the cheapest way those rows are known to
reach the same table. Reported: rows/s of each and the ratio sink / baseline (goal ≥ 0.5). The sink's
figure spans first record received → last commit (the consumer-group join before the first record is
excluded: it is a start-up cost, not throughput). The three alternate for ``--repeat`` rounds (fresh
database and consumer group each) and the best of each is compared, because the machine is shared.
Everything is written under one temporary directory, removed at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

try:
    from bench import results
except ModuleNotFoundError:  # run as a script (python bench/x.py): bench/ itself is on sys.path
    import results  # type: ignore[no-redef]

from schemas.topics import TOPICS, Topic
from store.base import Store
from store.dsn import open_store
from store.migrate import migrate
from store.rows import COLUMNS, TableRow, group_by_table, rows_for_message
from store.spool import Chunk, Spool
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.sink.stage import SinkConfig, SinkCore, ingest_table, run_sink


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
        [NewTopic(prefix + t.name, 12 if t.name == Topic.EVENTS else 1, 1) for t in TOPICS]
    )
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    for i, v in enumerate(values):
        await producer.send(prefix + Topic.EVENTS, v, key=f"node-{i % 1000:04d}".encode())
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


def staging_insert_s(store: Store, values: list[bytes]) -> float:
    """Seconds for one insert of the published values through the sink's ClickHouse-side checks."""
    chunk = Chunk(Topic.EVENTS, "bench.breakfix.events", 0, list(range(len(values))),
                  [1_740_787_200_000] * len(values), values)  # fmt: skip
    t0 = time.perf_counter()
    store.insert_arrow("events_ingest", ingest_table([chunk]))
    return time.perf_counter() - t0


def sink_run(broker: str, store: Store, n: int, batch_rows: int, group: str, spool: Path) -> SinkCore:
    """The real sink stage over the topic from its start (a new consumer group), until n records are in."""
    core = SinkCore(store, Spool(spool))
    cfg = SinkConfig(bootstrap=broker, group_id=group, topic_prefix="bench.", batch_rows=batch_rows,
                     batch_interval_s=0.5)  # fmt: skip

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(cfg, core, stop))
        while core.stats.rows["events_ingest"] < n and not task.done():
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
    work = tempfile.TemporaryDirectory(prefix="bench-sink-", ignore_cleanup_errors=True)
    dsn = args.store or f"chdb://{work.name}/chdb"
    base = dsn.split("?")[0]
    values = [event(i) for i in range(args.events)]
    raw_s: list[float] = []
    staging_s: list[float] = []
    sink_s: list[float] = []
    with work, EmbeddedBroker() as broker:
        asyncio.run(produce(broker.url, "bench.", values))
        now = datetime.now(UTC)
        map_t0 = time.perf_counter()
        rows = [r for i, v in enumerate(values) for r in rows_for_message(Topic.EVENTS, v, f"p@{i}", now)]
        map_s = time.perf_counter() - map_t0
        for k in range(args.repeat):
            # Alternate, so that load from other processes on a shared machine hits all three alike.
            raw_store = open_store(f"{base}?database=bench_raw{k}")
            migrate(raw_store)
            raw_s.append(raw_insert_s(raw_store, rows))
            staging_store = open_store(f"{base}?database=bench_staging{k}")
            migrate(staging_store)
            staging_s.append(staging_insert_s(staging_store, values))
            sink_store = open_store(f"{base}?database=bench_sink{k}")
            migrate(sink_store)
            core = sink_run(broker.url, sink_store, args.events, args.batch_rows, f"bench{k}",
                            Path(work.name) / f"spool{k}")  # fmt: skip
            assert core.stats.first_record_at is not None and core.stats.last_flush_at is not None
            sink_s.append(core.stats.last_flush_at - core.stats.first_record_at)
            for store in (staging_store, sink_store):
                stored = store.query(f"SELECT count() FROM {store.database}.events FINAL").rows[0][0]
                assert stored == args.events, f"{store.database} stored {stored} of {args.events} rows"
            for store in (raw_store, staging_store, sink_store):
                store.command(f"DROP DATABASE {store.database}")
        raw_store.close()

    base_s = [min(r, g) for r, g in zip(raw_s, staging_s, strict=True)]
    result = {
        "events": args.events,
        "backend": raw_store.kind,
        "rounds": args.repeat,
        "rows_bulk_insert_rows_per_s": round(args.events / min(raw_s)),
        "staging_insert_rows_per_s": round(args.events / min(staging_s)),
        "sink_rows_per_s": round(args.events / min(sink_s)),
        "ratio": round(min(base_s) / min(sink_s), 3),
        "ratio_per_round": [round(b / s, 3) for b, s in zip(base_s, sink_s, strict=True)],
        "sink_us_per_row": round(min(sink_s) / args.events * 1e6, 2),
        "baseline_us_per_row": round(min(base_s) / args.events * 1e6, 2),
        "sink_batches": core.stats.batches,
        "mapping_rows_per_s": round(args.events / map_s),
    }
    print(json.dumps(result, indent=2))
    results.write("sink", result)


if __name__ == "__main__":
    main()
