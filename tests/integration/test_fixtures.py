"""The session fixtures really start real components."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.embedded_broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def test_tansu_round_trips_messages(tansu: EmbeddedBroker, unique: str) -> None:
    topic = f"fixture-{unique}"

    async def go() -> list[bytes]:
        admin = AIOKafkaAdminClient(bootstrap_servers=tansu.url)
        await admin.start()
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        await admin.close()
        prod = AIOKafkaProducer(bootstrap_servers=tansu.url)
        await prod.start()
        for i in range(10):
            await prod.send_and_wait(topic, f"m{i}".encode(), key=b"n1")
        await prod.stop()
        cons = AIOKafkaConsumer(
            topic,
            bootstrap_servers=tansu.url,
            auto_offset_reset="earliest",
            group_id=f"g-{unique}",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        await cons.start()
        got: list[bytes] = []
        try:
            while len(got) < 10:
                batch = await cons.getmany(timeout_ms=2000)
                for msgs in batch.values():
                    got += [m.value for m in msgs if m.value is not None]
        finally:
            await cons.stop()
        return got

    assert asyncio.run(asyncio.wait_for(go(), 60)) == [f"m{i}".encode() for i in range(10)]


def test_chdb_store_is_a_real_clickhouse(chdb_client: Any, chdb_database: str) -> None:
    chdb_client.command(f"CREATE TABLE {chdb_database}.t (a UInt32) ENGINE = MergeTree ORDER BY a")
    chdb_client.insert(f"{chdb_database}.t", [[1], [2], [3]], column_names=["a"])
    assert chdb_client.query(f"SELECT sum(a) FROM {chdb_database}.t").result_rows == [(6,)]
