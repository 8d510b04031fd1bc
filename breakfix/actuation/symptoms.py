"""Service-level symptoms for validation's quiet window, followed from the events topic.

Validation passes ``quiet_s`` only when no symptom arrived for the node since validation started
(actuators/validation.py). The symptoms are the ones a returned node must not show: an Xid from its
GPUs, and workload trouble (crash loops, failed inference, NCCL timeouts) on it. This reads every
partition of ``breakfix.events`` without a group, from the end as of start-up (older symptoms are
the reason the node is being repaired, not evidence about the repair), on a private event-loop
thread, so the synchronous validator can ask at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.events import GpuXid, WorkloadEvent
from schemas.parse import validate_event_dict
from schemas.topics import Topic
from streams.kafka.client import kafka_options

SYMPTOM_TYPES = frozenset({"gpu.xid", "workload.event"})


class SymptomLog:
    """Event time of each node's latest symptom, from raw event bytes (anything else is ignored)."""

    def __init__(self) -> None:
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def last_symptom(self, node: str) -> datetime | None:
        with self._lock:
            return self._last.get(node)

    def note(self, raw: bytes) -> None:
        """Remember the event if it is a valid symptom; other types and bad input are not symptoms."""
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict) or doc.get("type") not in SYMPTOM_TYPES:
                return
            ev = validate_event_dict(doc)
        except (orjson.JSONDecodeError, ValidationError, ValueError):
            return
        if isinstance(ev, GpuXid | WorkloadEvent) and ev.node is not None:
            with self._lock:
                prior = self._last.get(ev.node)
                self._last[ev.node] = ev.time if prior is None else max(prior, ev.time)


class KafkaSymptoms:
    """The :class:`~actuators.validation.Symptoms` source: event time of each node's latest symptom."""

    def __init__(self, broker: str, topic: str = Topic.EVENTS) -> None:
        self.broker, self.topic = broker, topic
        self.log = SymptomLog()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="symptoms", daemon=True)
        self._thread.start()
        self._reader: asyncio.Future[None] | None = None
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            raise

    def last_symptom(self, node: str) -> datetime | None:
        return self.log.last_symptom(node)

    async def _start(self) -> None:
        consumer = AIOKafkaConsumer(**kafka_options(self.broker), enable_auto_commit=False)
        await consumer.start()
        await consumer.topics()
        parts = consumer.partitions_for_topic(self.topic) or set()
        if not parts:
            await consumer.stop()
            raise RuntimeError(f"topic {self.topic} does not exist; run `breakfix topics create` first")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._reader = asyncio.ensure_future(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            async for msg in consumer:
                self.log.note(msg.value or b"")
        finally:
            await consumer.stop()

    def close(self) -> None:
        async def stop() -> None:
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
