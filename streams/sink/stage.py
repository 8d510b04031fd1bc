"""The sink stage: every topic of the catalogue → ClickHouse, at least once, never double-counted.

Flow per batch (bounded by ``batch_rows`` and ``batch_interval_s``): telemetry (nearly every
record) goes into ClickHouse as it was published, the raw Kafka values with their coordinates in one
Arrow insert into ``events_ingest``, whose materialized views check each envelope and write it to
``events`` (and ``actions`` for action results) or to ``dead_letters`` with the reason
(migration 003); Python only reads each record's offset, timestamp and value out of Kafka's record
batches (:class:`streams.pipeline.compat.FetchedReader`) and builds the batch's columns. The few records of
the other topics are mapped to rows in Python (:mod:`store.rows`). Every insert carries a
deduplication token derived from what it holds, and only then are the Kafka offsets committed. A
crash before the commit redelivers the batch; the token (same batch) or ReplacingMergeTree on id (a
batch cut differently) keeps counts exact.

When the store fails, the batch's raw records go to a bounded local spool and the offsets are
committed (the data is durable on disk); spooled batches are drained in order once the store
answers again. When the spool is full, the sink stops consuming and retries, so Kafka holds the
backlog. One batch is inserted (in a worker thread: the engine call releases the GIL) while the next
is read and prepared, and no more: a slow ClickHouse slows consumption (back-pressure) instead of
growing memory; offsets are committed batch after batch, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import signal
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.signing import Keyring
from schemas.topics import TOPICS, Topic
from store.base import Store, StoreError, StoreUnavailable
from store.rows import COLUMNS, EVENTS_TOPIC, Row, TableRow, group_by_table, rows_for_message
from store.spool import Chunk, Spool, SpoolFull
from store.writer import batch_token
from streams import metrics as stage_metrics
from streams.kafka.client import kafka_options
from streams.keys import KeysMissing, load_keyring
from streams.pipeline.compat import FetchedReader
from streams.settings import StreamSettings
from streams.sink.fetch import Columns

log = logging.getLogger("breakfix.sink")

GUARD_TOPIC = Topic.PROPOSALS
_GUARD_ONLY_KINDS = frozenset({b"progress", b"registration", b"operator"})
"""``breakfix-kind`` header values sent on the proposals topic for the guard alone: the node stage's
watermark progress marks and placement registrations (streams/pipeline/node_shell.py), which order
and size the guard's input, carry no id and record no judgement, and an operator plan's step the API signed
(streams/pipeline/guard_shell.py), whose request is in the API's audit rows and whose judgement is the guard's
decision. None is audit data of its own; a proposal's row already holds its node's placement."""


def is_guard_only(topic: str, headers: Any) -> bool:
    """True for a guard-ordering record on the proposals topic: the sink skips it (no row, no dead
    letter) and still commits past it."""
    if topic != GUARD_TOPIC or not headers:
        return False
    return any(k == "breakfix-kind" and bytes(v) in _GUARD_ONLY_KINDS for k, v in headers)


def drop_guard_only(cols: Columns) -> Columns:
    """The proposals topic's records less the guard-ordering ones (see :func:`is_guard_only`)."""
    keep = [i for i, h in enumerate(cols.headers or []) if not is_guard_only(GUARD_TOPIC, h)]
    return Columns([cols.offsets[i] for i in keep], [cols.timestamps[i] for i in keep],
                   [cols.values[i] for i in keep])  # fmt: skip


_BINARY_LIMIT = (1 << 31) - 1
"""Bytes one Arrow ``binary`` array can hold (32-bit offsets)."""


def binary_column(values: list[bytes], limit: int = _BINARY_LIMIT) -> pa.ChunkedArray:
    """Values → Arrow ``binary``, by one join and a cumulative sum: ``pa.array`` converts value by
    value and grows its buffer as it goes, 1.8-4.9 µs per 700-byte record here against 0.8. Cut
    into pieces of at most ``limit`` bytes (Arrow's 2 GiB offset limit; a batch of large records
    can pass it)."""
    n = len(values)
    ends = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, values), np.int64, n), out=ends[1:])
    pieces = []
    first = 0
    while True:
        # Up to the last value ending within the limit from this piece's start; one value at least.
        last = min(max(int(np.searchsorted(ends, ends[first] + limit, "right")) - 1, first + 1), n)
        offsets = pa.py_buffer((ends[first : last + 1] - ends[first]).astype(np.int32))
        data = pa.py_buffer(b"".join(values[first:last]))
        pieces.append(pa.Array.from_buffers(pa.binary(), last - first, [None, offsets, data]))
        first = last
        if first >= n:
            return pa.chunked_array(pieces, pa.binary())


def ingest_table(chunks: list[Chunk]) -> pa.Table:
    """Telemetry chunks → the ``events_ingest`` columns, built column-wise in C (no loop per record):
    per-chunk constants (topic, partition) are repeated by numpy, the rest joined once."""
    counts = [len(c.values) for c in chunks]
    topics = sorted({c.topic for c in chunks})
    codes = np.repeat(np.array([topics.index(c.topic) for c in chunks], np.int32), counts)
    return pa.table({
        "raw": binary_column(list(chain.from_iterable(c.values for c in chunks))),
        "topic": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(topics, pa.string())),
        "partition": pa.array(np.repeat(np.array([c.partition for c in chunks], np.uint32), counts)),
        "offset": pa.array(list(chain.from_iterable(c.offsets for c in chunks)), pa.uint64()),
        "received_ms": pa.array(list(chain.from_iterable(c.timestamps for c in chunks)), pa.int64()),
    })  # fmt: skip


def ingest_token(table: pa.Table) -> str:
    """Deterministic in the records themselves (coordinates, timestamps and a CRC of the values and
    their boundaries), so a retried batch is recognised, while a topic recreated with the same
    offsets is not mistaken for it. Hashes the columns' Arrow buffers: nothing per record, and the
    values are read once, in place."""
    h = hashlib.sha256()
    for name in ("partition", "offset", "received_ms"):
        for chunk in table.column(name).chunks:
            h.update(chunk.to_numpy().tobytes())
    for chunk in table.column("topic").chunks:
        h.update("\0".join(chunk.dictionary.to_pylist()).encode())
        h.update(chunk.indices.to_numpy().tobytes())
    for chunk in table.column("raw").chunks:
        _, ends_buf, data = chunk.buffers()
        ends = np.frombuffer(ends_buf, np.int32, len(chunk) + 1, chunk.offset * 4)
        values = memoryview(data)[int(ends[0]) : int(ends[-1])] if data is not None else b""
        h.update(zlib.crc32(ends.tobytes()).to_bytes(4, "big"))
        h.update(zlib.crc32(values).to_bytes(4, "big"))
    return f"events_ingest-{table.num_rows}-{h.hexdigest()[:32]}"


@dataclass
class SinkStats:
    messages: int = 0
    skipped: int = 0
    """Guard-only records (progress marks, registrations) passed over without a row."""
    batches: int = 0
    spooled_batches: int = 0
    drained_batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    """Rows inserted per table; ``events_ingest`` counts telemetry records handed to ClickHouse's
    checks (each becomes an ``events`` or a ``dead_letters`` row there)."""
    insert_s: float = 0.0
    first_record_at: float | None = None
    """Monotonic time the first record arrived, and of the last durable flush: the busy span."""
    last_flush_at: float | None = None


@dataclass(frozen=True)
class Prepared:
    """A batch made ready for the store: the telemetry as one Arrow table with its token, the other
    topics mapped to rows. Built on the consuming side (:func:`prepare`) while the batch
    before it is being inserted, so the insert thread only inserts; ``chunks`` are kept for the spool."""

    chunks: list[Chunk]
    telemetry: pa.Table | None
    token: str
    rows: dict[str, list[Row]]
    refused_levers: Counter[str] = field(default_factory=Counter)
    """Control-topic records that did not verify, by reason: dead letters, not levers."""


def prepare(chunks: list[Chunk], levers: Keyring | None = None) -> Prepared:
    """Build what :meth:`SinkCore.insert` writes: no I/O, deterministic in the records (a spooled
    batch drained later gets the same rows and tokens). ``levers``: the trusted keys control-topic
    records are verified with (None: every lever is a dead letter, see
    :func:`store.rows.lever_rows`)."""
    telemetry = [c for c in chunks if c.name == EVENTS_TOPIC]
    rows: list[TableRow] = []
    refused: Counter[str] = Counter()
    for c in chunks:
        if c.name != EVENTS_TOPIC:
            for source, ts, value in zip(c.sources(), c.timestamps, c.values, strict=True):
                received = datetime.fromtimestamp(ts / 1000, UTC)
                mapped = rows_for_message(c.name, value, source, received, levers)
                if c.name == Topic.CONTROL:
                    refused.update(row[2] for table, row in mapped if table == "dead_letters")
                rows.extend(mapped)
    data = ingest_table(telemetry) if telemetry else None
    token = ingest_token(data) if data is not None else ""
    return Prepared(chunks, data, token, group_by_table(rows), refused)


class SinkCore:
    """The Kafka-free part of the sink: a batch of records in, rows durable out."""

    SET_ASIDE_AFTER = 5
    """Refusals (not outages) of one spooled batch before it is set aside: some refusals pass (too
    many parts while merges catch up), one that does not must not hold back every batch behind it."""

    def __init__(self, store: Store, spool: Spool, levers: Keyring | None = None) -> None:
        self.store = store
        self.spool = spool
        self.levers = levers
        """Trusted keys for the control topic; None fails closed (no lever is recorded as one)."""
        self.stats = SinkStats()
        self._refusals: Counter[str] = Counter()

    def insert(self, batch: Prepared | list[Chunk]) -> None:
        """Insert one batch; raises StoreError if any table refused or was unreachable."""
        if isinstance(batch, list):
            batch = prepare(batch, self.levers)
        t0 = time.perf_counter()
        if batch.telemetry is not None:
            n = self.store.insert_arrow("events_ingest", batch.telemetry, dedup_token=batch.token)
            self.stats.rows["events_ingest"] += n
        for table, table_rows in batch.rows.items():
            self.store.insert(table, COLUMNS[table], table_rows, dedup_token=batch_token(table, table_rows))
            self.stats.rows[table] += len(table_rows)
        for reason, n in batch.refused_levers.items():  # counted once the dead letters are durable
            stage_metrics.DEAD_LETTERS.labels(reason).inc(n)
        self.stats.insert_s += time.perf_counter() - t0

    def flush(self, batch: Prepared | list[Chunk]) -> str:
        """Make a batch durable: ``inserted`` or ``spooled``. Raises SpoolFull (back-pressure)."""
        if isinstance(batch, list):
            batch = prepare(batch, self.levers)
        if not batch.chunks:
            return "empty"
        self.stats.messages += sum(len(c.values) for c in batch.chunks)
        self.stats.batches += 1
        if not self.spool.files():
            try:
                self.insert(batch)
                return "inserted"
            except StoreError as err:
                log.warning("store refused a batch of %d chunks, spooling: %s", len(batch.chunks), err)
        # Either the store failed or older batches wait in the spool: keep order, spool this one too.
        self.spool.put(batch.chunks)
        self.stats.spooled_batches += 1
        self.drain()
        return "spooled"

    def drain(self) -> int:
        """Insert spooled batches oldest first until the spool is empty or the store is unreachable.
        A batch the store refuses (it answered, and said no) ``SET_ASIDE_AFTER`` times is moved to
        the spool's ``refused`` folder, logged and counted, and the drain goes on past it."""
        drained = 0
        for path in self.spool.files():
            try:
                self.insert(self.spool.load(path))
            except StoreUnavailable as err:
                log.info("spool drain paused (%d batches waiting): %s", len(self.spool.files()), err)
                break
            except StoreError as err:
                self._refusals[path.name] += 1
                if self._refusals[path.name] < self.SET_ASIDE_AFTER:
                    log.warning("spool drain paused: the store refused %s: %s", path.name, err)
                    break
                kept = self.spool.set_aside(path)
                del self._refusals[path.name]
                stage_metrics.SINK_SET_ASIDE.inc()
                log.error("batch %s refused %d times, set aside as %s (move it back to retry): %s",
                          path.name, self.SET_ASIDE_AFTER, kept, err)  # fmt: skip
                continue
            self._refusals.pop(path.name, None)
            self.spool.remove(path)
            drained += 1
            self.stats.drained_batches += 1
        return drained


@dataclass(frozen=True)
class SinkConfig:
    bootstrap: str
    group_id: str = "breakfix-sink"
    topics: tuple[str, ...] = tuple(t.name for t in TOPICS)
    topic_prefix: str = ""
    """Prepended to every catalogue name (one broker shared by several fleets or test runs)."""
    batch_rows: int = 5000
    batch_interval_s: float = 1.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    retry_backoff_s: float = 1.0
    max_partition_fetch_bytes: int = 8 << 20
    """Per-partition fetch size: 1 MiB (aiokafka's default) holds ~1,500 telemetry events, so a
    20k-row batch took many broker round trips."""
    fetch_max_bytes: int = 64 << 20
    """Whole-fetch bound (aiokafka's default 50 MiB would cap several full partitions)."""


async def run_sink(cfg: SinkConfig, core: SinkCore, stop: asyncio.Event) -> SinkStats:
    """Consume until ``stop`` is set; flush what is pending and commit before returning.

    One batch is made durable (mapped and inserted in a worker thread, then its offsets committed)
    while the next one is read, so consuming and inserting overlap; a third batch waits for the one
    in flight, which bounds memory and turns a slow store into back-pressure on the consumer.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        *(cfg.topic_prefix + t for t in cfg.topics),
        **kafka_options(cfg.bootstrap),
        group_id=cfg.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
        fetch_max_bytes=cfg.fetch_max_bytes,
    )
    await consumer.start()
    reader = FetchedReader(consumer, headers_for=frozenset({cfg.topic_prefix + GUARD_TOPIC}))
    pending: list[Chunk] = []
    pending_records = 0
    offsets: dict[TopicPartition, int] = {}
    opened = time.monotonic()
    inflight: asyncio.Task[None] | None = None

    async def make_durable(batch: Prepared, commit: dict[TopicPartition, int]) -> None:
        while True:
            try:
                await asyncio.to_thread(core.flush, batch)
                break
            except SpoolFull as err:
                log.error("%s; pausing consumption until the store answers", err)
                await asyncio.sleep(cfg.retry_backoff_s)
                await asyncio.to_thread(core.drain)
        if commit:
            await consumer.commit(commit)
            stage_metrics.record_lag(cfg.group_id, commit, consumer.highwater)
            core.stats.last_flush_at = time.monotonic()

    async def hand_off() -> None:
        """Prepare the pending batch (while the one in flight is inserted), wait for the one in
        flight, then start making the pending one durable."""
        nonlocal pending, pending_records, offsets, opened, inflight
        # offsets alone: a batch of skipped records still moves the commit
        batch = prepare(pending, core.levers) if pending or offsets else None
        if inflight is not None:
            await inflight
            inflight = None
        if batch is not None:
            inflight = asyncio.create_task(make_durable(batch, offsets))
        elif core.spool.files():
            await asyncio.to_thread(core.drain)
        pending, pending_records, offsets, opened = [], 0, {}, time.monotonic()

    try:
        while not stop.is_set():
            left_s = max(0.0, opened + cfg.batch_interval_s - time.monotonic())
            got = await reader.next(left_s, cfg.batch_rows - pending_records)
            if got and core.stats.first_record_at is None:
                core.stats.first_record_at = time.monotonic()
            for tp, cols in got.items():
                offsets[tp] = cols.offsets[-1] + 1
                name = tp.topic.removeprefix(cfg.topic_prefix)
                if cols.headers is not None:  # the proposals topic: drop the guard's own records
                    kept = drop_guard_only(cols)
                    core.stats.skipped += len(cols) - len(kept)
                    cols = kept
                if cols.values:
                    pending.append(
                        Chunk(name, tp.topic, tp.partition, cols.offsets, cols.timestamps, cols.values)
                    )
                    pending_records += len(cols.values)
            if pending_records >= cfg.batch_rows or time.monotonic() - opened >= cfg.batch_interval_s:
                await hand_off()
        await hand_off()
        await hand_off()
        await hand_off()
    finally:
        if inflight is not None and not inflight.done():
            inflight.cancel()
        await consumer.stop()
    return core.stats


def main(argv: list[str] | None = None) -> None:
    """``python -m streams.sink.stage --bootstrap 127.0.0.1:9092 --store chdb:///data/chdb --spool DIR``"""
    p = argparse.ArgumentParser(prog="python -m streams.sink.stage", description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--store", default=None, help="store DSN (default: $BREAKFIX_STORE_DSN)")
    p.add_argument("--spool", default=".breakfix/spool")
    p.add_argument("--spool-max-bytes", type=int, default=1 << 30)
    p.add_argument("--group", default="breakfix-sink")
    p.add_argument("--batch-rows", type=int, default=5000)
    p.add_argument("--batch-interval", type=float, default=1.0)
    p.add_argument("--topics", default="", help="comma-separated (default: every catalogue topic)")
    p.add_argument("--topic-prefix", default="", help="prefix of every topic name on this broker")
    p.add_argument("--no-migrate", action="store_true",
                   help="skip creating/upgrading tables (an insert-only ClickHouse user cannot)")  # fmt: skip
    args = p.parse_args(argv)
    topics = tuple(args.topics.split(",")) if args.topics else tuple(t.name for t in TOPICS)
    cfg = SinkConfig(
        bootstrap=args.bootstrap,
        group_id=args.group,
        topics=topics,
        topic_prefix=args.topic_prefix,
        batch_rows=args.batch_rows,
        batch_interval_s=args.batch_interval,
    )
    serve(cfg, args.store, Path(args.spool), args.spool_max_bytes, migrate_first=not args.no_migrate,
          levers=lever_keys(StreamSettings()))  # fmt: skip


def lever_keys(settings: StreamSettings) -> Keyring | None:
    """The trust file the sink verifies levers with (``BREAKFIX_KEYS_DIR``/``BREAKFIX_TRUSTED_KEYS_FILE``).
    Without one the sink still records everything else (the audit trail must not stop), and every
    lever becomes a dead letter instead of a row the lever read-back or the API's seed could show."""
    try:
        return load_keyring(settings)
    except KeysMissing as err:
        log.error("levers will be dead letters, never recorded as levers: %s", err)
        return None


def serve(
    cfg: SinkConfig,
    store_dsn: str | None,
    spool: Path,
    spool_max_bytes: int,
    migrate_first: bool = True,
    levers: Keyring | None = None,
) -> None:
    """Run the sink until SIGTERM or SIGINT (`breakfix run --role sink`, `python -m streams.sink.stage`)."""
    from store.dsn import open_store
    from store.migrate import migrate

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store = open_store(store_dsn)
    if migrate_first:
        migrate(store)
    core = SinkCore(store, Spool(spool, spool_max_bytes), levers)

    async def _run() -> SinkStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        log.info("sink started: store open, consuming %d topics from %s", len(cfg.topics), cfg.bootstrap)
        return await run_sink(cfg, core, stop)

    stats = asyncio.run(_run())
    log.info("stopped: %d messages, %d batches, rows %s", stats.messages, stats.batches, dict(stats.rows))
    store.close()


if __name__ == "__main__":
    main()
