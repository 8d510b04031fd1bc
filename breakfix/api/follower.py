"""Follows the compacted control topic, so the API's lever mirror (:class:`ControlState`, also the
workflow engine's kill-switch check) sees levers another API replica or another process set.

At start it reads the topic from its beginning up to the fetch high watermark before the API
serves (bounded: a slow broker delays start by ``catch_up_s`` at most, and the mirror was already
seeded from the store); then it keeps reading in the app's event loop. No consumer group: every
API process reads every partition. A topic that does not exist yet is not created here (a broker
would pick its own partition count); the follower looks for it again every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from breakfix.api.control import ControlState
from schemas.deadletter import DeadLetter
from schemas.signing import Keyring
from streams.kafka.client import kafka_options
from streams.keys import load_keyring
from streams.settings import StreamSettings
from streams.signed_input import read_lever

log = logging.getLogger(__name__)


class ControlFollower:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        state: ControlState,
        *,
        catch_up_s: float = 10.0,
        fetch_wait_ms: int = 200,
        look_again_s: float = 2.0,
        keyring: Keyring | None = None,
    ) -> None:
        """``fetch_wait_ms`` bounds how late a lever set elsewhere is seen (a broker such as
        Tansu answers an empty fetch only when the wait expires)."""
        self.bootstrap, self.topic, self.state = bootstrap, topic, state
        self.keyring = keyring or load_keyring(StreamSettings())
        """Levers are applied only when the API's key signed them (streams.signed_input)."""
        self.catch_up_s, self.fetch_wait_ms, self.look_again_s = catch_up_s, fetch_wait_ms, look_again_s
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **kafka_options(self.bootstrap),
            client_id="breakfix-api-control",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_wait_ms,
            metadata_max_age_ms=5000,
        )
        await consumer.start()
        self._consumer = consumer
        if await self._subscribe():
            await self._catch_up()
        else:
            log.warning("control topic %s does not exist yet; following it once it does", self.topic)
        self._task = asyncio.create_task(self._follow(), name="breakfix-api-control")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _subscribe(self) -> bool:
        assert self._consumer is not None
        if self.topic not in await self._consumer.topics():
            return False
        self._consumer.subscribe([self.topic])
        return True

    async def _catch_up(self) -> None:
        assert self._consumer is not None
        consumer, deadline = self._consumer, time.monotonic() + self.catch_up_s
        while time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=self.fetch_wait_ms)
            self._apply([r for records in got.values() for r in records])
            if not got and await self._at_end(consumer):
                return
        log.warning("control topic %s not caught up in %.0fs; following on", self.topic, self.catch_up_s)

    @staticmethod
    async def _at_end(consumer: AIOKafkaConsumer) -> bool:
        """Every assigned partition read up to its high watermark (known once a fetch answered)."""
        assigned = consumer.assignment()
        if not assigned:
            return False
        for tp in assigned:
            high = consumer.highwater(tp)
            if high is None or await consumer.position(tp) < high:
                return False
        return True

    async def _follow(self) -> None:
        assert self._consumer is not None
        subscribed = bool(self._consumer.subscription())
        while True:
            try:
                if not subscribed:
                    subscribed = await self._subscribe()
                    if not subscribed:
                        await asyncio.sleep(self.look_again_s)
                        continue
                got = await self._consumer.getmany(timeout_ms=self.fetch_wait_ms)
                self._apply([r for records in got.values() for r in records])
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a broker hiccup must not end the follower
                log.warning("reading control topic %s failed: %s; retrying", self.topic, err)
                await asyncio.sleep(1.0)

    def _apply(self, records: list[Any]) -> None:
        for r in records:
            try:
                lever = read_lever(r.value or b"", self.keyring, f"{r.partition}@{r.offset}")
                if isinstance(lever, DeadLetter):  # only the API's signed levers, never a forged one
                    log.warning(
                        "refused a control message at %s@%s: %s", r.partition, r.offset, lever.message
                    )
                    continue
                self.state.apply(lever, r.offset)
            except ValidationError as err:
                log.warning("ignoring a bad control message at %s@%s: %s", r.partition, r.offset, err)
