"""A validating producer for telemetry: every event is checked against the contract before it leaves.

Producers (the ``breakfix collect`` collectors, operators' own scripts) hand in envelope dicts. Each
one goes through :func:`schemas.parse.parse_event` - the same entry point the node stage uses - so a
producer can never publish what the pipeline would reject: valid events go to ``breakfix.events``
keyed by node id (one node, one partition), invalid ones to ``breakfix.deadletter`` with the reason.
Node-less events (a driver rollout to a pool, cluster-wide scheduler state) are written to every
partition of the events topic, as ``breakfix replay --into-kafka`` does: each node-stage partition
applies them to its own nodes at the same place in its stream as offline replay.
A change event that names a node but whose scope is a pool goes to its node's partition like any
node event; the node stage there fans it out (policy.driver's scope fan-out).

:class:`EventProducer` is the asyncio API; :class:`SyncEventProducer` runs it on a private event loop
thread for plain scripts and for collectors whose device APIs (NVML, kubernetes watches) block.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaProducer

from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import Envelope, event_type_of
from schemas.parse import dead_letter, parse_event
from schemas.recording import dumps
from schemas.signing import SEAL
from schemas.topics import Topic
from streams.kafka.client import kafka_options

EVENTS_TOPIC = Topic.EVENTS
DEADLETTER_TOPIC = Topic.DEADLETTER

T = TypeVar("T")


def build_event(
    type_: str,
    source: str,
    node: str | None,
    data: Mapping[str, Any],
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An envelope dict in the wire layout; ``id`` defaults to ``<source>-<random>``, time to now (UTC).

    >>> e = build_event("node.kernel", "kmsg", "gpu01", {"line": "NVRM: Xid 79"}, event_id="k-1")
    >>> (e["id"], e["type"], e["node"], e["data"]["line"])
    ('k-1', 'node.kernel', 'gpu01', 'NVRM: Xid 79')
    """
    return {
        "id": event_id or f"{source}-{uuid.uuid4().hex}",
        "type": type_,
        "source": source,
        "time": (time or datetime.now(UTC)).isoformat(),
        "node": node,
        "data": dict(data),
    }


def check(event: Mapping[str, Any] | Envelope, source: str = "") -> Envelope | DeadLetter:
    """Validate one outgoing event exactly as a consumer would (JSON round trip included)."""
    try:
        raw = dumps(event) if isinstance(event, Envelope) else orjson.dumps(event, default=str)
    except orjson.JSONEncodeError as err:  # an integer past 64 bits, a cyclic or non-string-keyed map
        text = repr(event).encode("utf-8", errors="replace")
        return dead_letter(text, DeadLetterReason.INVALID_VALUE, f"not encodable as JSON: {err}", source)
    return parse_event(raw, source)


class EventProducer:
    """aiokafka producer that validates, keys by node and dead-letters what the contract refuses."""

    def __init__(
        self,
        bootstrap: str,
        topic: str = EVENTS_TOPIC,
        deadletter_topic: str = DEADLETTER_TOPIC,
        client_id: str = "breakfix-producer",
    ) -> None:
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.sent: Counter[str] = Counter()
        """Events accepted per type; ``dead_letter:<reason>`` for refused ones."""
        self._producer = AIOKafkaProducer(
            **kafka_options(bootstrap), client_id=client_id, acks="all", linger_ms=5
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, event: Mapping[str, Any] | Envelope, source: str = "") -> Envelope | DeadLetter:
        """Queue one event; returns the parsed event, or the dead letter that was sent instead."""
        parsed = check(event, source)
        if isinstance(parsed, DeadLetter):
            self.sent[f"dead_letter:{parsed.reason.value}"] += 1
            key = (parsed.node or "").encode()
            await self._producer.send(self.deadletter_topic, dumps(parsed), key=key)
            return parsed
        self.sent[event_type_of(parsed)] += 1
        # A signed event leaves exactly as it was sealed: a re-encoding (times, key order) would
        # break its signature (schemas.signing).
        signed = isinstance(event, Mapping) and SEAL in event
        payload = orjson.dumps(event) if signed else dumps(parsed)
        if parsed.node is None:
            await self._to_every_partition(payload)
        else:
            await self._producer.send(self.topic, payload, key=parsed.node.encode())
        return parsed

    async def _to_every_partition(self, payload: bytes) -> None:
        """One copy per partition (the node stage skips copies by offset, never by id)."""
        for p in sorted(await self._producer.partitions_for(self.topic)):
            await self._producer.send(self.topic, payload, key=b"", partition=p)

    async def flush(self) -> None:
        await self._producer.flush()


class SyncEventProducer:
    """:class:`EventProducer` for blocking code: a private event loop runs in a daemon thread."""

    def __init__(self, bootstrap: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="breakfix-producer", daemon=True)
        self._thread.start()
        self._inner: EventProducer = self._run(self._make(bootstrap, kwargs))
        try:
            self._run(self._inner.start())
        except BaseException:
            self._shutdown_loop()
            raise

    @staticmethod
    async def _make(bootstrap: str, kwargs: dict[str, Any]) -> EventProducer:
        # aiokafka binds to the running loop at construction, so build it on the producer's loop.
        return EventProducer(bootstrap, **kwargs)

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    @property
    def sent(self) -> Counter[str]:
        return self._inner.sent

    def send(self, event: Mapping[str, Any] | Envelope, source: str = "") -> Envelope | DeadLetter:
        return self._run(self._inner.send(event, source))

    def flush(self) -> None:
        self._run(self._inner.flush())

    def close(self) -> None:
        try:
            self._run(self._inner.stop())
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> SyncEventProducer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
