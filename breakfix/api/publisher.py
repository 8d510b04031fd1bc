"""A blocking Kafka publisher for the API's request threads: aiokafka on a private event loop.

Control levers, audit records and tenant reports must reach the broker before the API answers 200,
so :meth:`KafkaPublisher.publish` waits for the acknowledgement (``acks=all``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaProducer

from schemas.signing import Signer
from streams.kafka.client import kafka_options

T = TypeVar("T")


class KafkaPublisher:
    def __init__(
        self,
        bootstrap: str,
        client_id: str = "breakfix-api",
        timeout_s: float = 30.0,
        signer: Signer | None = None,
    ) -> None:
        """``signer``: the API's key, which seals what may change a node's lifecycle (tenant reports,
        repair status, operator plan steps)."""
        self._timeout_s = timeout_s
        self.signer = signer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="breakfix-api-kafka", daemon=True)
        self._thread.start()
        try:
            self._producer: AIOKafkaProducer = self._run(self._start(bootstrap, client_id))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _start(bootstrap: str, client_id: str) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**kafka_options(bootstrap), client_id=client_id, acks="all")
        await producer.start()
        return producer

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout_s)

    def publish(self, topic: str, key: str, value: bytes, headers: dict[str, bytes] | None = None) -> int:
        """Returns the offset the broker acknowledged: the message's position in its partition.
        ``headers``: Kafka record headers (``breakfix-kind`` routes an operator plan step)."""
        pairs = list((headers or {}).items()) or None
        meta = self._run(self._producer.send_and_wait(topic, value, key=key.encode(), headers=pairs))
        return int(meta.offset)

    def publish_sealed(
        self, topic: str, key: str, doc: dict[str, Any], headers: dict[str, bytes] | None = None
    ) -> int:
        """Publish ``doc`` (JSON-ready) under the API's seal; unsigned when no key is configured (the
        pipeline then refuses it). Returns the acknowledged offset."""
        body = orjson.loads(orjson.dumps(doc))
        if self.signer is not None:
            body = self.signer.seal(body, time.time())
        return self.publish(topic, key, orjson.dumps(body), headers)

    def close(self) -> None:
        try:
            self._run(self._producer.stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
