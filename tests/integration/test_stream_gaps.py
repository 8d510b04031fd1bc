"""A node-stage consumer that resumes past input its state never applied reads that input back.

Faust resumes a partition from the group's committed offset (or, for a partition with none, from
wherever its fetcher had got to). Here the group's offsets are committed past the first records of
every events partition before the worker ever ran, so the worker's checkpointed state (none) needs
input its consumer will not deliver: without the read-back the skipped inventories make every node
unknown and the decisions differ from offline replay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from integration.test_stream_kafka import (  # the module's fixtures too: same recording, same offline run
    Workers,
    _read,
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
from streams.settings import StreamSettings
from tests.fixtures.streams import isolated_settings

pytestmark = pytest.mark.integration
SKIP = 40
"""Records committed past at the head of each events partition (the inventories come first)."""


@pytest.fixture
def settings(tansu: EmbeddedBroker, unique: str, tmp_path: Path) -> StreamSettings:
    return isolated_settings(tansu.url, unique, tmp_path, "g")


async def _commit_past_head(settings: StreamSettings) -> dict[int, int]:
    """Commit the worker group's offsets ``SKIP`` records into each events partition."""
    topic = settings.topic("breakfix.events")
    tps = [TopicPartition(topic, p) for p in range(TOPIC_BY_NAME["breakfix.events"].partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.broker, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        at = {tp.partition: min(SKIP, ends[tp]) for tp in tps}
        await consumer.commit({tp: at[tp.partition] for tp in tps if at[tp.partition] > 0})
        return at
    finally:
        await consumer.stop()


def test_input_the_consumer_skipped_is_read_back_and_decisions_equal_offline(
    settings: StreamSettings,
    tmp_path: Path,
    recording: Path,  # noqa: F811
    offline: list[Decision],  # noqa: F811
) -> None:
    asyncio.run(replay_into_kafka(recording, settings, as_fast_as_possible=True))
    skipped = asyncio.run(_commit_past_head(settings))
    assert sum(skipped.values()) >= 10 * SKIP, "most partitions must start past their head"
    pool = Workers(settings, tmp_path)
    try:
        pool.start(0)
        streamed = read_decisions(settings, len(offline), timeout_s=120.0)
        letters = asyncio.run(_read(settings, "breakfix.deadletter", lambda v: False, 2.0, 0.0))
        logs = pool.logs()
    finally:
        pool.stop_all()
    assert_safe(streamed, recording)
    assert by_node(streamed) == by_node(offline), f"{diff(streamed, offline)} ({logs})"
    assert letters == [], f"{len(letters)} dead letters: skipped input was not applied"
    assert "skipped records of" in logs, "the worker must have read the skipped heads back"
