"""Reaching node agents over Kafka: the controller's :class:`CommandTransport` for remote nodes.

A request goes to ``breakfix.commands`` keyed by node (so it lands in the partition the node's agent
reads); the answer is the ``action.result`` on ``breakfix.events`` whose ``request_id`` matches. The
results consumer reads every partition without a group, from the end as of start-up, and runs on a
private event loop thread so the synchronous actuator API can wait on it with a timeout.

Signed both ways: each request carries the actuator stage's seal; an answer counts only when an
``agent`` key whose scope covers the request's node signed it, it names that node, and it answers a
request this transport sent and still waits for. Anything else on the topic (a forged "passed"
validation, an answer to someone else's request) is ignored and counted in :attr:`refused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from actuators.base import TemporaryError
from schemas.actions import ActionRequest
from schemas.events import ActionResult
from schemas.signing import SEAL, Keyring, Signer, verify
from schemas.topics import Topic

log = logging.getLogger("breakfix.node_agent")


def answer_of(
    raw: bytes, waiting: Mapping[str, str], keyring: Keyring, now: float
) -> tuple[ActionResult | None, str]:
    """A verified agent answer to one of the ``waiting`` requests (request id → node), or None with
    the reason it does not count ("" for other producers' events, which are not answers at all)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, ""  # garbage on the events topic: not an answer
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or doc.get("type") != "action.result":
        return None, ""  # other producers' events
    rid = data.get("request_id")
    node = waiting.get(rid) if isinstance(rid, str) else None
    if node is None:
        return None, ""  # not an answer to a request of ours that still waits
    seal = verify(doc, keyring, {"agent"}, now, None, node)
    if not seal.ok:
        return None, str(seal.reason)
    if doc.get("node") != node:
        return None, "wrong_node"
    try:
        return ActionResult.model_validate({k: v for k, v in doc.items() if k != SEAL}), ""
    except ValidationError:
        return None, "invalid_value"


class KafkaCommandTransport:
    def __init__(
        self,
        broker: str,
        signer: Signer,
        keyring: Keyring,
        topic_prefix: str = "",
        kafka: Mapping[str, Any] | None = None,
    ) -> None:
        """``kafka``: client options with transport security (streams.kafka.client), else plain ``broker``."""
        self.broker = broker
        self.conn = dict(kafka or {"bootstrap_servers": broker})
        self.signer = signer
        self.keyring = keyring
        self._waiting: dict[str, str] = {}
        """Request id → node, for requests sent and not answered yet."""
        self.refused: dict[str, int] = {}
        self.commands = topic_prefix + Topic.COMMANDS
        self.events = topic_prefix + Topic.EVENTS
        self._results: dict[str, ActionResult] = {}
        self._arrived = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="node-agent-transport", daemon=True
        )
        self._thread.start()
        self._reader: asyncio.Future[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            raise

    async def _start(self) -> None:
        self._producer = AIOKafkaProducer(**self.conn, acks="all")
        await self._producer.start()
        consumer = AIOKafkaConsumer(**self.conn, enable_auto_commit=False)
        await consumer.start()
        await consumer.topics()  # loads cluster metadata, so the partitions below are known
        parts = consumer.partitions_for_topic(self.events) or set()
        if not parts:
            await consumer.stop()
            await self._producer.stop()
            raise RuntimeError(f"topic {self.events} does not exist; run `breakfix topics create` first")
        tps = [TopicPartition(self.events, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before any request can be answered
            await consumer.position(tp)
        self._reader = asyncio.ensure_future(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            async for msg in consumer:
                # A dict lookup is atomic: no lock per message of the busy events topic.
                result, reason = answer_of(msg.value or b"", self._waiting, self.keyring, time.time())
                if reason:
                    self.refused[reason] = self.refused.get(reason, 0) + 1
                    log.warning("ignored an answer: %s", reason)
                if result is not None:
                    with self._arrived:
                        rid = str((result.data.model_extra or {})["request_id"])
                        self._results[rid] = result
                        self._arrived.notify_all()
        finally:
            await consumer.stop()

    def request(self, req: ActionRequest, timeout_s: float) -> ActionResult:
        assert self._producer is not None
        body = self.signer.seal(req.model_dump(mode="json"), time.time())
        with self._arrived:
            self._waiting[req.id] = req.node
        try:
            send = self._producer.send_and_wait(self.commands, orjson.dumps(body), key=req.node.encode())
            asyncio.run_coroutine_threadsafe(send, self._loop).result(timeout=max(timeout_s, 1.0))
            with self._arrived:
                if not self._arrived.wait_for(lambda: req.id in self._results, timeout=timeout_s):
                    raise TemporaryError(
                        f"no answer from the node agent on {req.node} within {timeout_s:.0f}s"
                    )
                return self._results.pop(req.id)
        finally:
            with self._arrived:
                self._waiting.pop(req.id, None)

    def close(self) -> None:
        async def stop() -> None:
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
            if self._producer is not None:
                await self._producer.stop()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> KafkaCommandTransport:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
