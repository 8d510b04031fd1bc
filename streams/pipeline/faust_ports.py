"""The ports of :mod:`streams.pipeline.ports` over a Faust app and the broker: what runs in production.

Each adapter is a few lines over Faust's public API; the private touches they need (the current
event for a table write's partition, gap ranges for records read back, the producer buffer's
hand-over) are in :mod:`streams.pipeline.compat`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from schemas.topics import Topic
from streams import metrics as stage_metrics
from streams.kafka.client import kafka_options
from streams.pipeline.compat import buffer_task_waiting, in_partition_of, mark_skipped_read
from streams.pipeline.gap_reader import read_range
from streams.pipeline.ports import LogRecord, Writes
from streams.settings import StreamSettings

_FLUSH_HANDOVER_S = 5.0
"""Longest a flush waits for Faust's buffer task to hand its last message to the producer."""


class FaustOutbound:
    """Sends through Faust's topics (raw bytes); flushes through its producer."""

    def __init__(self, app: Any, topics: dict[str, Any]) -> None:
        """``topics``: catalogue name → the app's ``faust`` topic of it."""
        self.app = app
        self.topics = topics

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        partition: int | None = None,
        headers: dict[str, bytes] | None = None,
    ) -> Awaitable[Any]:
        fut: Awaitable[Any] = await self.topics[topic].send(
            key=key, value=value, partition=partition, headers=headers
        )
        return fut

    async def flush(self) -> None:
        """Until every table write has left Faust's buffer and been acknowledged. Faust's own flush
        gives up when one buffered message takes over 0.1 s to hand over (a loaded machine, a large
        checkpoint), which let a checkpoint's closing record share a batch with the next records and
        recovery stop short of it."""
        producer = self.app.producer
        buffer = producer.buffer
        # Faust's buffer task takes a message off its queue before it hands it to the producer, so an
        # empty queue can still have one message on its way that the producer's flush misses (seen: a
        # checkpoint's closing record batched with the next write and hidden from recovery). The task
        # waits on the queue again only once that message is with the producer. Bounded, in case the
        # buffer task is not running at all.
        deadline = time.monotonic() + _FLUSH_HANDOVER_S
        while buffer.size or (not buffer_task_waiting(buffer) and time.monotonic() < deadline):
            await producer.flush()
            await asyncio.sleep(0)
        await producer.flush()


class FaustTable:
    """A Faust table of raw bytes; every :meth:`write` ends with a flush of the producer.

    Tansu answers ListOffsets 'latest' with the base offset of the last record batch + 1, which
    made Faust's changelog recovery stop early or raise ConsistencyError; with every write ending
    its batch, the answer is exact for every changelog partition after every completed checkpoint."""

    def __init__(self, table: Any, out: FaustOutbound) -> None:
        self.table = table
        self.out = out

    def items(self) -> list[tuple[str, Any]]:
        return list(self.table.items())

    def get(self, key: str) -> Any:
        return self.table.get(key)

    async def write(self, groups: list[tuple[Any, Writes]]) -> None:
        table = self.table
        for context, writes in groups:
            with in_partition_of(context):
                for key, value in writes:
                    table[key] = value
        await self.out.flush()


class StreamCommit:
    """Acknowledges through the agent's stream (set when the agent starts iterating)."""

    def __init__(self) -> None:
        self.stream: Any = None

    async def ack(self, event: Any) -> None:
        await self.stream.ack(event)


class FaustInputLog:
    """The worker consumer's offsets, plus group-less consumers for reading back ranges."""

    def __init__(self, app: Any, settings: StreamSettings) -> None:
        self.app = app
        self.settings = settings

    async def log_starts(self, tps: dict[str, tuple[str, int]]) -> dict[str, int]:
        by_role = {role: TP(topic, p) for role, (topic, p) in tps.items()}
        starts = await self.app.consumer.earliest_offsets(*by_role.values())
        return {role: int(starts[tp]) for role, tp in by_role.items()}

    async def read_skipped(self, stage: str, msg: Any, start: int) -> list[LogRecord]:
        records = await read_range(self.settings.broker, msg.topic, msg.partition, start, msg.offset)
        stage_metrics.record_gap(stage, len(records))
        # Faust never delivered them, so never sees them acknowledged: its gap ranges count them
        # acknowledged once a later offset is, which the checkpoint covering them all acknowledges.
        await mark_skipped_read(self.app.consumer, msg.tp, start, msg.offset - 1)
        return [LogRecord(r.topic, r.offset, r.value, r.headers) for r in records]

    def highwater(self, topic: str, partition: int) -> int | None:
        hw: int | None = self.app.consumer.highwater(TP(topic, partition))
        return hw

    async def sent_decision_ids(self, partitions: set[int | None], tail: int = 1000) -> set[str]:
        """Ids among the last ``tail`` decisions of ``partitions``: a restarted guard drops what its
        predecessor sent but had not yet cleared from its outbox (the crash window between the two)."""
        parts = {p for p in partitions if p is not None}
        if not parts:
            return set()
        settings = self.settings
        consumer = AIOKafkaConsumer(**kafka_options(settings=settings), enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic(Topic.DECISIONS), p) for p in sorted(parts)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(0, ends[tp] - tail))
            ids: set[str] = set()
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    ids.update(orjson.loads(m.value)["id"] for m in msgs if m.value)
            return ids
        finally:
            await consumer.stop()
