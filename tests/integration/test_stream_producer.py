"""The validating producer on the real Tansu broker: node-less events reach every node-stage partition.

A pool-wide change (node = null) concerns nodes in every partition; the node stage applies such an
event to the nodes of the partition it arrived on, so the producer must write one copy per partition
(as ``replay --into-kafka`` does), while node events stay keyed by node (one copy, one partition).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.producer import EventProducer, build_event

pytestmark = pytest.mark.integration

PARTITIONS = 5


async def _scenario(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1), NewTopic(topic + ".dl", 1, 1)])
    finally:
        await admin.close()
    producer = EventProducer(bootstrap, topic=topic, deadletter_topic=topic + ".dl")
    await producer.start()
    try:
        change = {"kind": "driver", "version": "550.1", "scope": {"pool": "pool-a"}}
        await producer.send(build_event("change.event", "ci", None, change, event_id="chg-1"))
        await producer.send(build_event("gpu.xid", "ci", "gpu07", {"gpu": 0, "xid": 79}, event_id="x-1"))
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[tuple[int, bytes | None, str]] = []
    try:
        async with asyncio.timeout(20):
            while len(out) < PARTITIONS + 1:
                for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                    out.extend((tp.partition, m.key, m.value.decode()) for m in msgs if m.value)
    finally:
        await consumer.stop()
    return out


def test_node_less_events_go_to_every_partition_node_events_to_one(
    tansu: EmbeddedBroker, unique: str
) -> None:
    got = asyncio.run(_scenario(tansu.url, f"prod{unique}.events"))
    copies = Counter(p for p, _, value in got if '"chg-1"' in value)
    assert copies == Counter(range(PARTITIONS)), "one copy of the fleet-wide change per partition"
    xid = [(p, key) for p, key, value in got if '"x-1"' in value]
    assert len(xid) == 1 and xid[0][1] == b"gpu07", "a node event is sent once, keyed by its node"
