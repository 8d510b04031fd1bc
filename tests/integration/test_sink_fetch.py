"""The sink's column reader against a real broker: it must hand out exactly what ``getmany`` would,
cut at ``max_records`` (a Kafka record batch split across calls), in offset order, nothing skipped or
repeated, headers where asked, and the consumer's position where the records end."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.embedded_broker import EmbeddedBroker
from streams.pipeline.compat import FetchedReader
from streams.sink.fetch import Columns

pytestmark = pytest.mark.integration

PARTITIONS = 3
PER_PARTITION = 700


async def _produce(url: str, topic: str) -> dict[int, list[bytes]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    await admin.close()
    sent: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=50)
    await producer.start()
    for i in range(PER_PARTITION * PARTITIONS):
        p = i % PARTITIONS
        value = f"v{i}".encode()
        await producer.send(topic, value, partition=p, headers=[("n", str(i).encode())])
        sent[p].append(value)
    await producer.stop()
    return sent


async def _read_all(
    url: str, topic: str, group: str, cut: int, headers: bool
) -> list[dict[TopicPartition, Columns]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=url, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    reader = FetchedReader(consumer, frozenset({topic}) if headers else frozenset())
    calls: list[dict[TopicPartition, Columns]] = []
    try:
        total = 0
        for _ in range(200):
            got = await reader.next(0.5, cut)
            calls.append(got)
            total += sum(len(c) for c in got.values())
            if total >= PER_PARTITION * PARTITIONS:
                break
        for tp in consumer.assignment():  # the position is just past what was handed out
            last = max((c.offsets[-1] for g in calls for t, c in g.items() if t == tp), default=-1)
            assert await consumer.position(tp) == last + 1
    finally:
        await consumer.stop()
    return calls


@pytest.mark.parametrize("cut", [97, 5000])
def test_reader_hands_out_every_record_once_in_order_cut_exactly(
    tansu: EmbeddedBroker, unique: str, cut: int
) -> None:
    topic = f"fetch-{unique}"
    sent = asyncio.run(_produce(tansu.url, topic))
    calls = asyncio.run(_read_all(tansu.url, topic, f"g-{unique}", cut, headers=True))

    assert all(sum(len(c) for c in got.values()) <= cut for got in calls)
    if cut < PER_PARTITION:  # batches of ~700 records are split, and every call but the last is full
        assert [sum(len(c) for c in got.values()) for got in calls[:-1]] == [cut] * (len(calls) - 1)
    for p in range(PARTITIONS):
        parts = [got[tp] for got in calls for tp in got if tp.partition == p]
        offsets = [o for c in parts for o in c.offsets]
        assert offsets == list(range(PER_PARTITION))
        assert [v for c in parts for v in c.values] == sent[p]
        names = [dict(h)["n"] for c in parts for h in (c.headers or [])]
        assert [int(n) for n in names] == [i * PARTITIONS + p for i in range(PER_PARTITION)]
        assert all(len(c.timestamps) == len(c) for c in parts)


def test_reader_reads_no_headers_unless_asked(tansu: EmbeddedBroker, unique: str) -> None:
    topic = f"fetch-{unique}"
    asyncio.run(_produce(tansu.url, topic))
    calls = asyncio.run(_read_all(tansu.url, topic, f"g-{unique}", 10_000, headers=False))
    assert sum(len(c) for got in calls for c in got.values()) == PER_PARTITION * PARTITIONS
    assert all(c.headers is None for got in calls for c in got.values())


def test_reader_waits_at_most_its_timeout_on_an_empty_topic(tansu: EmbeddedBroker, unique: str) -> None:
    topic = f"fetch-{unique}"

    async def run() -> tuple[dict[TopicPartition, Columns], float]:
        admin = AIOKafkaAdminClient(bootstrap_servers=tansu.url)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 1, 1)])
        await admin.close()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=tansu.url, group_id=f"g-{unique}",
                                    enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
        await consumer.start()
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            got = await FetchedReader(consumer).next(0.3, 100)
            return got, loop.time() - t0
        finally:
            await consumer.stop()

    got, waited = asyncio.run(run())
    assert got == {}
    assert 0.25 <= waited < 3.0
