"""Create the catalogue's topics (schemas/topics.py) on any Kafka-protocol broker.

Topics must exist with their partition counts before a worker subscribes: a broker that auto-creates
would pick its own partition count (Tansu: 4), and the node stage relies on the events and decisions
topics having the same count so a node's events and its decisions land on the same worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import TOPICS, TopicSpec
from streams.kafka.client import kafka_options
from streams.settings import StreamSettings


@dataclass(frozen=True)
class TopicOutcome:
    name: str
    partitions: int
    compacted: bool
    created: bool
    """False when the topic already existed (creation is idempotent)."""


def topic_config(spec: TopicSpec) -> dict[str, str]:
    return {"cleanup.policy": "compact"} if spec.compacted else {}


async def create_topics(
    settings: StreamSettings, replication_factor: int = 1, specs: tuple[TopicSpec, ...] = TOPICS
) -> list[TopicOutcome]:
    """Create every missing catalogue topic; existing topics are left as they are."""
    admin = AIOKafkaAdminClient(**kafka_options(settings=settings), client_id=f"{settings.app_id}-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if settings.topic(s.name) not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        settings.topic(s.name),
                        num_partitions=s.partitions,
                        replication_factor=replication_factor,
                        topic_configs=topic_config(s),
                    )
                    for s in missing
                ]
            )
        return [TopicOutcome(settings.topic(s.name), s.partitions, s.compacted, s in missing) for s in specs]
    finally:
        await admin.close()
