"""A worker restoring from changelog topics an attacker wrote runs nothing and rebuilds its state.

Whoever can write to the broker can write the node and guard tables' changelog topics, which a worker
reads back into its tables on start (Faust's changelog recovery) and then decodes as state records.
Here every node bucket and the guard's snapshot hold a crafted pickle (``tests/unit/record_attack``:
loading it runs ``touch MARKER``) in the shape the stages store, before the first worker ever
starts. The worker must refuse each record without loading it, rebuild the state from the input
topics' retained records, and decide exactly what offline replay decides.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from integration.test_stream_kafka import (  # the module's fixtures too: same recording, same offline run
    Workers,
    by_node,
    diff,
    offline,  # noqa: F401
    read_decisions,
    recording,  # noqa: F401
)
from reliability.safety import assert_safe

from schemas.decision import Decision
from schemas.topics import TOPIC_BY_NAME
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.replay import replay_into_kafka
from streams.pipeline.node_stage import bucket_key
from streams.settings import StreamSettings
from tests.fixtures.streams import isolated_settings
from tests.unit.record_attack import attack, planted

pytestmark = pytest.mark.integration
BUCKETS = 4
"""Crafted buckets written per partition (any bucket key the stage reads will do)."""


@pytest.fixture
def settings(tansu: EmbeddedBroker, unique: str, tmp_path: Path) -> StreamSettings:
    return isolated_settings(tansu.url, unique, tmp_path, "p")


async def _plant(settings: StreamSettings, marker: Path) -> None:
    """Crafted records on both changelog topics, created first as the worker would create them."""
    parts = TOPIC_BY_NAME["breakfix.events"].partitions
    nodes, guard = f"{settings.app_id}-nodes-changelog", f"{settings.app_id}-guard-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(nodes, parts, 1), NewTopic(guard, 1, 1)])
    finally:
        await admin.close()
    crafted = base64.b64encode(attack(marker)).decode()
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker)
    await producer.start()
    try:
        for p in range(parts):
            for b in range(BUCKETS):
                record = {"p": p, "rt": crafted, "offset": 10**6, "seq": 0}
                value = orjson.dumps({"p": p, "nodes": {f"gpu-{p}-{b}": record}})
                await producer.send_and_wait(nodes, value, key=orjson.dumps(bucket_key(p, b)), partition=p)
        snapshot = {"guard": crafted, "watermark": {}, "seen": [], "outbox": [], "node_partition": {}}
        await producer.send_and_wait(guard, orjson.dumps(snapshot), key=b'"guard"', partition=0)
    finally:
        await producer.stop()


def test_crafted_pickles_on_the_changelogs_run_nothing_and_state_is_rebuilt_from_input(
    settings: StreamSettings,
    tmp_path: Path,
    recording: Path,  # noqa: F811
    offline: list[Decision],  # noqa: F811
) -> None:
    marker = tmp_path / "pwned"
    asyncio.run(_plant(settings, marker))
    asyncio.run(replay_into_kafka(recording, settings, as_fast_as_possible=True))
    pool = Workers(settings, tmp_path)
    try:
        pool.start(0)
        streamed = read_decisions(settings, len(offline), timeout_s=120.0)
        logs = pool.logs(tail=None)
    finally:
        pool.stop_all()
    assert not planted(marker), "a crafted state record ran code in the worker"
    assert "the guard's stored state record was refused" in logs
    assert "a stored state record was refused" in logs and "a pickle" in logs
    assert_safe(streamed, recording)
    assert by_node(streamed) == by_node(offline), diff(streamed, offline)
