"""Read back a range of one partition that the stage's consumer skipped (see streams.pipeline.input_offsets).

A separate consumer with no group: it neither moves the worker consumer's position nor commits, so
Faust's fetch loop, read offsets and rebalance handling stay untouched (seeking the worker consumer
from an agent races Faust's own bookkeeping, which drops records below its last read offset).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streams.kafka.client import kafka_options

log = logging.getLogger(__name__)
_TIMEOUT_S = 60.0


class GapNotRead(RuntimeError):
    """The skipped records could not be read back in time: the stage must stop rather than act on a
    gap (a restart re-reads from the checkpointed offsets)."""


async def read_range(
    broker: str, topic: str, partition: int, start: int, end: int, timeout_s: float = _TIMEOUT_S
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of ``topic``/``partition`` with ``start <= offset < end``, in offset order. Offsets the
    log no longer has (retention, compaction, transaction markers) are simply absent."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        **kafka_options(broker), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                span = f"{topic}/{partition} [{start}, {end})"
                raise GapNotRead(f"{span}: read {len(out)} records in {timeout_s:.0f} s")
            batch = await consumer.getmany(tp, timeout_ms=500)
            out.extend(r for r in batch.get(tp, []) if start <= r.offset < end)
            await asyncio.sleep(0)
        log.warning("read back %d skipped records of %s/%d [%d, %d)", len(out), topic, partition, start, end)
        return out
    finally:
        await consumer.stop()
