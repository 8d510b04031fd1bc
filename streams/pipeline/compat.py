"""Every use of Faust's and aiokafka's private API, in one module, checked against their versions.

The streaming shell needs a few things neither library offers publicly; each is here, named for what
it does, so an upgrade has one file to re-read:

* :func:`in_partition_of`: Faust picks a table write's changelog partition (and RocksDB database)
  from the *current event* (``faust.streams._current_event``); a write made outside the agent's
  iteration (a checkpoint for a partition other than the last event's) must set it.
* :func:`mark_skipped_read`: records read back from the log past a gap were never delivered through
  Faust, which would never count them acknowledged; ``Consumer._add_gap`` makes its gap ranges cover
  them, so the next acknowledged offset past them is committable.
* :func:`buffer_task_waiting`: Faust's producer buffer task takes a message off its queue before it
  hands it to the producer; the queue's waiters (``pending._getters``) say the hand-over is done.
* :class:`BreakfixApp`: Faust builds its worker consumer with ``fetch_max_wait_ms=1500``
  hard-coded; the app overrides its transport's consumer factory to use the setting.
* :class:`FetchedReader`: the sink reads the record batches aiokafka's fetcher has already fetched
  (``_fetcher._records``), without a Python object per record.

:func:`check_versions` runs at import: another faust-streaming or aiokafka release than the ranges in
:data:`SUPPORTED` (those these touches were written and tested against) stops the process with an
error naming the range, instead of failing later inside a rebalance or a checkpoint.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from typing import Any

SUPPORTED: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "faust-streaming": ((0, 15), (0, 16)),
    "aiokafka": ((0, 14), (0, 15)),
}
"""Distribution → [lowest, first unsupported) (major, minor): the releases whose private API this module
was read against and the real-broker tests ran on (faust-streaming 0.15.3, aiokafka 0.14.0)."""


class UnsupportedVersion(RuntimeError):
    """An installed faust-streaming or aiokafka outside :data:`SUPPORTED`."""


def _major_minor(text: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_versions(found: Mapping[str, str] | None = None) -> None:
    """Raise :class:`UnsupportedVersion` unless every distribution in :data:`SUPPORTED` (installed
    versions, or ``found``) is in its range; the message names the range and how to get there."""
    for dist, (low, high) in SUPPORTED.items():
        try:
            text = found[dist] if found is not None else installed_version(dist)
        except (KeyError, PackageNotFoundError):
            wanted = f"{dist}>={_v(low)},<{_v(high)}"
            raise UnsupportedVersion(f"{dist} is not installed; install {wanted}") from None
        got = _major_minor(text)
        if got is None or not low <= got < high:
            raise UnsupportedVersion(
                f"{dist} {text} is installed, but the streaming shell uses its private API as of "
                f"{dist}>={_v(low)},<{_v(high)} (streams/pipeline/compat.py): install a version in that "
                "range, or re-check every use in streams/pipeline/compat.py against the new release and "
                "widen the range"
            )


def _v(mm: tuple[int, int]) -> str:
    return f"{mm[0]}.{mm[1]}"


check_versions()

# Imported after the check: an unsupported release may not even import the names used here.
import faust  # noqa: E402
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, FetchResult  # noqa: E402
from aiokafka.errors import CorruptRecordException  # noqa: E402
from faust.sensors import Sensor  # noqa: E402
from faust.streams import _current_event  # noqa: E402
from faust.transport.drivers import aiokafka as driver  # noqa: E402

from streams.sink.fetch import Columns  # noqa: E402


@contextmanager
def in_partition_of(event: Any) -> Iterator[None]:
    """Table writes inside go to ``event``'s partition's changelog and store (RocksDB keeps a
    database per partition and reads the partition from Faust's current event)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


async def mark_skipped_read(consumer: Any, tp: Any, start: int, end: int) -> None:
    """Offsets ``start..end`` (inclusive) of ``tp`` count acknowledged once a later offset is: they
    were read back from the log, never delivered through Faust's stream."""
    await consumer._add_gap(tp, start, end)


def buffer_task_waiting(buffer: Any) -> bool:
    """True when Faust's producer buffer task waits on its queue again, i.e. it has handed its last
    message to the producer (an empty queue alone does not say so)."""
    return bool(buffer.pending._getters)


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when its fetcher starts (consumer.start() runs after this returns).
        consumer._fetch_max_wait_ms = self.app.conf.breakfix_fetch_max_wait_ms
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):
    Consumer = _Consumer


class BreakfixApp(faust.App):
    """``faust.App`` whose worker consumer waits at most ``fetch_max_wait_ms`` per empty fetch.

    On Apache Kafka a fetch returns as soon as ``fetch_min_bytes`` (1) arrive, so the wait only bounds
    idle polls; the Tansu broker answers a fetch that found nothing only when the wait expires, even
    if records arrive meanwhile (measured here: a record sent every 0.37 s reached a consumer after
    344 ms p50 at 1500 ms, 15 ms at 100 ms, 6 ms at 20 ms). Every hop of the pipeline (events → node
    stage, proposals → guard, decisions → actuators) paid up to that wait."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 1500, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conf.breakfix_fetch_max_wait_ms = fetch_max_wait_ms

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def on_init_dependencies(self) -> Any:
        """Without Faust's own Monitor sensor: it keeps per-event statistics (several calls, clock
        reads and dict updates per message in and out) that only Faust's web stats pages show; the
        stages' metrics are their own (``streams.metrics``)."""
        services = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        # Faust warns at every rebalance when no sensor answered; the base sensor does nothing.
        self.sensors.add(Sensor())
        return services


class FetchedReader:
    """``getmany`` for one consumer, as :class:`Columns` per topic-partition (the sink's read).

    aiokafka's ``getmany`` hands out every record as a ``ConsumerRecord`` dataclass built in Python
    through a generator: ~2 µs of Python per record on a shared 2-core machine, half of what the sink
    spent reading Kafka (measured over the same 100k records: 2.5 µs/record through ``getmany`` vs
    0.55 reading the record batches it had fetched). This reads the record batches aiokafka's fetcher
    has already fetched, straight from its C record classes, and advances the consumer's position
    exactly as ``getmany`` would: control batches skipped, records before the fetch position
    (compressed batches) skipped, CRC checked when the consumer checks CRCs. A batch is cut exactly at
    ``max_records`` (as ``getmany`` cuts it); the records of a Kafka record batch past the cut wait
    here for the next call. Waiting, fetch errors and rebalances stay aiokafka's."""

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
