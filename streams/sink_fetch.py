"""The sink's read of fetched Kafka records as columns, without a Python object per record.

aiokafka's ``getmany`` hands out every record as a ``ConsumerRecord`` dataclass built in Python
through a generator: ~2 µs of Python per record on the shared 2-core machine, half of what the sink
spent reading Kafka (measured over the same 100k records: 2.5 µs/record through ``getmany`` vs 0.55
reading the record batches it had fetched). The sink needs only offset, timestamp, value and, on the
proposals topic, headers, so :func:`take_fetched` reads the record batches aiokafka's fetcher has
already fetched, straight from its C record classes, and advances the consumer's position exactly as
``getmany`` would: control batches skipped, records before the fetch position (compressed batches)
skipped, CRC checked when the consumer checks CRCs. A batch is cut exactly at ``max_records`` (as
``getmany`` cuts it); the records of a Kafka record batch past the cut wait here for the next call.
Waiting, fetch errors and rebalances stay aiokafka's.

This reads aiokafka internals (its fetcher's buffered results), so the version range in
pyproject.toml is pinned to the releases whose fetcher this was written against, and the sink's
integration tests run it against a real broker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, FetchResult
from aiokafka.errors import CorruptRecordException


@dataclass
class Columns:
    """One topic-partition's records, in offset order, as parallel lists."""

    offsets: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    headers: list[list[tuple[str, bytes]]] | None = None
    """Only for partitions whose headers were asked for."""

    def __len__(self) -> int:
        return len(self.offsets)

    def cut(self, n: int) -> tuple[Columns, Columns]:
        """The first ``n`` records and the rest."""
        h = self.headers
        return (
            Columns(self.offsets[:n], self.timestamps[:n], self.values[:n], None if h is None else h[:n]),
            Columns(self.offsets[n:], self.timestamps[n:], self.values[n:], None if h is None else h[n:]),
        )


class FetchedReader:
    """``getmany`` for one consumer, as :class:`Columns` per topic-partition."""

    def __init__(self, consumer: AIOKafkaConsumer, headers_for: frozenset[str] = frozenset()) -> None:
        self.consumer: Any = consumer
        self.headers_for = headers_for
        """Kafka topics whose records' headers are read (the others' are not: they cost)."""
        self._carry: dict[TopicPartition, tuple[object, Columns, int]] = {}
        """Records read past a cut, with the aiokafka PartitionRecords they came from and the
        offset after the last batch read: served first while that object is still the partition's
        buffered result at the same position."""
        if consumer._fetcher._isolation_level != READ_UNCOMMITTED:
            raise ValueError("FetchedReader reads read_uncommitted consumers only")

    async def next(self, timeout_s: float, max_records: int) -> dict[TopicPartition, Columns]:
        """``getmany(timeout_ms, max_records)`` as columns: records already fetched, else wait up
        to ``timeout_s`` for the fetcher to buffer some. Coordination and fetch errors are raised
        as (and by) ``getmany``, and the wait counts as polling, so the group does not take a
        waiting consumer for a stalled one."""
        consumer = self.consumer
        fetcher, subscription = consumer._fetcher, consumer._subscription
        consumer._coordinator.check_errors()
        deadline = time.monotonic() + timeout_s
        with subscription.fetch_context():
            while True:
                if subscription.reassignment_in_progress:
                    await subscription.wait_for_assignment()
                got = self.take(max_records)
                if got:
                    return got
                if any(type(r) is not FetchResult for r in fetcher._records.values()):
                    slow = await consumer.getmany(timeout_ms=0)  # raises the fetch error
                    return {tp: self._columns(tp, rs) for tp, rs in slow.items() if rs}
                left = deadline - time.monotonic()
                if left <= 0:
                    return {}
                waiter = fetcher._create_fetch_waiter()
                done, _ = await asyncio.wait([waiter], timeout=left)
                if not done:
                    waiter.cancel()
                    return {}
                waiter.result()

    def take(self, max_records: int) -> dict[TopicPartition, Columns]:
        """Up to ``max_records`` records already fetched, without waiting; ``{}`` when none are
        ready or while a rebalance is under way."""
        fetcher = self.consumer._fetcher
        if self.consumer._subscription.reassignment_in_progress:
            return {}
        out: dict[TopicPartition, Columns] = {}
        taken = 0
        for tp, result in list(fetcher._records.items()):
            if taken >= max_records:
                break
            if type(result) is not FetchResult:
                continue  # a fetch error: getmany raises it
            partition = result._partition_records
            carried = self._carry.pop(tp, None)
            if result.check_assignment(tp) and result.has_more():
                want = max_records - taken
                if carried is not None and carried[0] is partition:
                    cols, end = carried[1], carried[2]
                else:
                    cols, end = Columns(), partition.next_fetch_offset
                if len(cols) < want:
                    partition.next_fetch_offset = end
                    self._read_batches(tp, partition, cols, want)
                    end = partition.next_fetch_offset
                cols, rest = cols.cut(want)
                if len(rest):
                    self._carry[tp] = (partition, rest, end)
                    partition.next_fetch_offset = cols.offsets[-1] + 1
                else:
                    partition.next_fetch_offset = end
                result._update_position()
                if len(cols):
                    out[tp] = cols
                    taken += len(cols)
                if not len(rest) and not partition._records.has_next():
                    result._partition_records = None
            if not result.has_more():
                del fetcher._records[tp]
                fetcher._notify(fetcher._wait_consume_future)
        return out

    def _read_batches(self, tp: TopicPartition, partition: Any, cols: Columns, want: int) -> None:
        """Append whole record batches from ``partition`` (aiokafka's PartitionRecords) to ``cols``
        until it holds ``want`` records; its ``next_fetch_offset`` moves past every batch read."""
        check_crcs = self.consumer._fetcher._check_crcs
        if cols.headers is None and tp.topic in self.headers_for:
            cols.headers = []
        records = partition._records
        offsets, timestamps, values, headers = cols.offsets, cols.timestamps, cols.values, cols.headers
        while len(offsets) < want and records.has_next():
            batch = records.next_batch()
            if check_crcs and not batch.validate_crc():
                raise CorruptRecordException(f"Invalid CRC - {tp}")
            if not batch.is_control_batch:
                start = partition.next_fetch_offset  # a compressed batch may be fetched from its middle
                # One pass, no record kept: record objects are tracked by the cyclic GC, and holding a
                # batch of them (list(batch)) set off ~200 collections per 100k records, some of
                # them full ones over the whole heap; this loop sets off none.
                for r in batch:
                    offset = r.offset
                    if offset >= start:
                        offsets.append(offset)
                        timestamps.append(r.timestamp)
                        values.append(r.value or b"")
                        if headers is not None:
                            headers.append(r.headers)
            partition.next_fetch_offset = batch.next_offset

    def _columns(self, tp: TopicPartition, records: list[Any]) -> Columns:
        """ConsumerRecords (the rare ``getmany`` path) as columns."""
        return Columns(
            [r.offset for r in records], [r.timestamp for r in records], [r.value or b"" for r in records],
            [list(r.headers) for r in records] if tp.topic in self.headers_for else None,
        )  # fmt: skip
