"""The streaming runtime's ports (streams.pipeline.ports) in memory: a broker of lists, for tests
without Kafka.

Topics are lists of records per partition (offset = index); every send, table write, flush, read-back
and acknowledgement is appended to one journal, so a test can assert the order the runtime's
durability rules need. Faust and Kafka stand behind these ports in production (streams.pipeline.faust_ports);
what they add (batching, changelog recovery, rebalances) is tested against the real broker in
tests/integration/test_stream_kafka.py and test_stream_gaps.py.
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from schemas.topics import TOPIC_BY_NAME, Topic
from streams.pipeline.guard_shell import GuardShell
from streams.pipeline.guard_stage import GuardStage
from streams.pipeline.node_shell import NodeShell
from streams.pipeline.node_stage import NodeStage
from streams.pipeline.ports import LogRecord, Ports, Writes

NAMES: dict[str, str] = {t: str(t) for t in Topic}
"""Catalogue name → topic name: no deployment prefix here."""


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class Message:
    """Faust's ``Message`` as far as the runtime reads it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Delivered:
    """A record delivered through a stream (Faust's ``Event``)."""

    message: Message


class MemoryKafka:
    """Topics, consumer positions and committed offsets, plus the journal of what happened."""

    def __init__(self) -> None:
        self.logs: dict[TP, list[Message]] = defaultdict(list)
        self.sent: list[Message] = []
        """Every record, in the order it was appended (across partitions)."""
        self.journal: list[tuple[Any, ...]] = []
        self.committed: dict[TP, int] = {}

    def append(self, topic: str, partition: int, key: bytes, value: bytes, headers: Any = None) -> Message:
        log = self.logs[TP(topic, partition)]
        msg = Message(topic, partition, len(log), key, value, list((headers or {}).items()))
        log.append(msg)
        self.sent.append(msg)
        return msg

    def produce(self, topic: str, key: bytes, value: bytes) -> Message:
        """A producer outside the pipeline (collectors, the API), partitioned by key as Kafka's is."""
        partitions = TOPIC_BY_NAME[Topic(topic)].partitions
        return self.append(topic, zlib.crc32(key) % partitions, key, value)

    def records(self, topic: str) -> list[Message]:
        return [m for tp, log in sorted(self.logs.items()) if tp.topic == topic for m in log]

    def kinds(self, *kinds: str) -> list[tuple[Any, ...]]:
        return [entry for entry in self.journal if entry[0] in kinds]


class MemoryOutbound:
    def __init__(self, kafka: MemoryKafka) -> None:
        self.kafka = kafka

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        partition: int | None = None,
        headers: dict[str, bytes] | None = None,
    ) -> Awaitable[Any]:
        msg = self.kafka.append(topic, 0 if partition is None else partition, key, value, headers)
        self.kafka.journal.append(("send", topic, msg.partition, key.decode()))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(msg)
        return done

    async def flush(self) -> None:
        self.kafka.journal.append(("flush",))


class MemoryTable:
    def __init__(self, name: str, out: MemoryOutbound) -> None:
        self.name = name
        self.out = out
        self.data: dict[str, Any] = {}

    def items(self) -> list[tuple[str, Any]]:
        return list(self.data.items())

    def get(self, key: str) -> Any:
        return self.data.get(key)

    async def write(self, groups: list[tuple[Any, Writes]]) -> None:
        for context, writes in groups:
            for key, value in writes:
                self.data[key] = value
                self.out.kafka.journal.append(("write", self.name, key, context.message.partition))
        await self.out.flush()


class MemoryCommit:
    def __init__(self, kafka: MemoryKafka) -> None:
        self.kafka = kafka

    async def ack(self, event: Any) -> None:
        msg = event.message
        self.kafka.journal.append(("ack", msg.topic, msg.partition, msg.offset))
        self.kafka.committed[msg.tp] = max(self.kafka.committed.get(msg.tp, 0), msg.offset + 1)


class MemoryInputLog:
    def __init__(self, kafka: MemoryKafka) -> None:
        self.kafka = kafka

    async def log_starts(self, tps: dict[str, tuple[str, int]]) -> dict[str, int]:
        return {role: 0 for role in tps}

    async def read_skipped(self, stage: str, msg: Any, start: int) -> list[LogRecord]:
        self.kafka.journal.append(("read back", stage, msg.topic, msg.partition, start, msg.offset))
        log = self.kafka.logs[TP(msg.topic, msg.partition)][start : msg.offset]
        return [LogRecord(m.topic, m.offset, m.value, m.headers) for m in log]

    def highwater(self, topic: str, partition: int) -> int | None:
        return len(self.kafka.logs[TP(topic, partition)])

    async def sent_decision_ids(self, partitions: set[int | None]) -> set[str]:
        return {
            orjson.loads(m.value)["id"]
            for p in partitions
            if p is not None
            for m in self.kafka.logs[TP(Topic.DECISIONS, p)]
        }


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ports(kafka: MemoryKafka, table: str, clock: Clock, out: MemoryOutbound | None = None) -> Ports:
    out = out or MemoryOutbound(kafka)
    return Ports(out, MemoryTable(table, out), MemoryCommit(kafka), MemoryInputLog(kafka), clock)


class MemoryPipeline:
    """Both stages over one in-memory broker, delivering records as Faust would (in offset order per
    partition, from each stream's consumer position)."""

    def __init__(self, node_stage: NodeStage, new_guard: Any, checkpoint_s: float = 10.0) -> None:
        self.kafka = MemoryKafka()
        self.clock = Clock()
        self.node_ports = ports(self.kafka, "nodes", self.clock)
        self.guard_ports = ports(self.kafka, "guard", self.clock)
        self.node = NodeShell(node_stage, self.node_ports, NAMES, "test")
        self.new_guard: Any = new_guard
        self.guard = GuardShell(self._guard_stage, self.guard_ports, NAMES, checkpoint_s)
        self.position: dict[TP, int] = defaultdict(int)
        self.crashes = 0

    def _guard_stage(self) -> GuardStage:
        stage: GuardStage = self.new_guard()
        return stage

    def pending(self, topics: Iterable[str]) -> list[Message]:
        """Undelivered records of ``topics``, partition by partition in offset order."""
        out = []
        for tp, log in sorted(self.kafka.logs.items()):
            if tp.topic in topics:
                out.extend(log[self.position[tp] :])
        return out

    async def deliver(self, msg: Message, queue_empty: Any = lambda: True) -> None:
        """Deliver ``msg`` to its stage; ``queue_empty`` answers the node stage's "is more input
        queued?" (always empty by default: pending guard items leave at once)."""
        self.position[msg.tp] = msg.offset + 1
        if msg.topic in (Topic.EVENTS, Topic.DECISIONS):
            await self.node.input(Delivered(msg), self.clock(), queue_empty)
        else:
            await self.guard.input(Delivered(msg))

    async def run(self, rounds: int = 6) -> None:
        """``rounds`` passes of delivering what is there, each followed by the timers (progress
        marks, watermark release) and the clock moving 10 s on (quiet partitions count as caught up
        after the node stage's ``idle_s``)."""
        partitions = set(range(TOPIC_BY_NAME[Topic.EVENTS].partitions))
        for _ in range(rounds):
            for msg in self.pending((Topic.EVENTS, Topic.DECISIONS)):
                await self.deliver(msg)
            await self.node.timer(lambda: partitions)
            for msg in self.pending((Topic.PROPOSALS, Topic.CONTROL)):
                await self.deliver(msg)
            if self.guard.on:
                await self.guard.timer()
            self.clock.now += 10.0

    def crash_node(self, stage: NodeStage) -> None:
        """A SIGKILLed node-stage worker replaced by one running ``stage``: what was not checkpointed
        is gone, the table stays, and its input is delivered again from the committed offsets."""
        self.node = NodeShell(stage, self.node_ports, NAMES, "test")
        for tp in list(self.position):
            if tp.topic in (Topic.EVENTS, Topic.DECISIONS):
                self.position[tp] = self.kafka.committed.get(tp, 0)

    async def run_interleaved(
        self, rng: random.Random, timer_every: float = 0.01, crash: Callable[[], NodeStage] | None = None
    ) -> None:
        """Deliver everything in a random interleaving (a random input partition, or the guard, at
        each step; the input queue found empty at random, so guard items wait for a batch; the
        timers at random moments, the clock moving 1 s each time), then run the timers until the
        stages hold and owe nothing (no held item, no unacknowledged input): the stream has ended.
        With ``crash``, the node stage is killed and replaced (:meth:`crash_node`) at random, about
        every 3,000 steps."""
        partitions = set(range(TOPIC_BY_NAME[Topic.EVENTS].partitions))
        node_topics, guard_topics = (Topic.EVENTS, Topic.DECISIONS), (Topic.PROPOSALS, Topic.CONTROL)
        quiet = 0
        while quiet < 5:
            logs = self.kafka.logs.items()
            ready = {
                tp
                for tp, log in logs
                if tp.topic in node_topics + guard_topics and self.position[tp] < len(log)
            }
            node = sorted(tp for tp in ready if tp.topic in node_topics)
            guard = sorted(tp for tp in ready if tp.topic in guard_topics)
            if (not node and not guard) or rng.random() < timer_every:
                self.clock.now += 1.0
                await self.node.timer(lambda: partitions)
                if self.guard.on:
                    await self.guard.timer()
                done = not (
                    ready
                    or len(self.guard.stage.watermark)
                    or self.guard.acks
                    or any(self.node.held.values())
                )
                quiet = quiet + 1 if done else 0
                continue
            if crash is not None and rng.random() < 1 / 3000:
                self.crash_node(crash())
                self.crashes += 1
                continue
            tp = guard[0] if guard and (not node or rng.random() < 0.3) else rng.choice(node)
            await self.deliver(self.kafka.logs[tp][self.position[tp]], lambda: rng.random() < 0.5)
