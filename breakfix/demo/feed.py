"""The demo's telemetry producer: the simulated fleet's recording, published as live telemetry, paced.

Why not ``breakfix replay --into-kafka``: a replay is marked ``replay=true`` on purpose, so its
decisions never execute and no actuator would ever run. The demo's fleet is not a replay of
yesterday, it is (simulated) live telemetry, so the demo publishes it unmarked, as producers would,
and paces it: event time ``t`` leaves at wall time ``wall_origin + (t - origin) / speed``. The
actuator stage's fleet clock uses the same mapping, so the result of an action carries the time it
happened in the fleet's world. Like the replay, node-less events (pool-wide changes, scheduler state)
go to every partition, so each partition's nodes see them in stream order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from schemas.recording import iter_lines
from schemas.topics import Topic
from streams.kafka.client import kafka_options
from streams.keys import load_signer
from streams.settings import StreamSettings

EVENTS = Topic.EVENTS
AS = {"tenant.report": "api", "repair.status": "api", "action.result": "actuators"}
"""Who stands behind each lifecycle event of the recording in a live deployment (streams.signed_input)."""


@dataclass
class FeedStats:
    lines: int = 0
    messages: int = 0
    behind_s: float = 0.0
    """The most the producer fell behind its pace (wall seconds)."""


async def feed(
    recording: Path,
    settings: StreamSettings,
    origin: float,
    wall_origin: float,
    speed: float,
    progress: Callable[[int], None] = lambda n: None,
) -> FeedStats:
    """Publish every line of ``recording`` at its paced wall time; returns once all are acked."""
    topic = settings.topic(EVENTS)
    signers = {kind: load_signer(settings, role) for kind, role in AS.items()}
    producer = AIOKafkaProducer(**kafka_options(settings=settings), acks="all", linger_ms=20)
    await producer.start()
    stats = FeedStats()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        for _, raw in iter_lines(recording):
            stats.lines += 1
            obj = orjson.loads(raw)
            due = wall_origin + (datetime.fromisoformat(obj["time"]).timestamp() - origin) / speed
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                stats.behind_s = max(stats.behind_s, -delay)
            signer = signers.get(obj.get("type", ""))
            if signer is not None:  # the fleet's tenants report through the API, which signs
                raw = orjson.dumps(signer.seal(obj, time.time()))
            node = obj.get("node")
            if node:
                await producer.send(topic, raw, key=node.encode())
                stats.messages += 1
            else:
                for p in partitions:
                    await producer.send(topic, raw, key=b"", partition=p)
                    stats.messages += 1
            if stats.lines % 500 == 0:
                progress(500)
        await producer.flush()
        progress(stats.lines % 500)
    finally:
        await producer.stop()
    return stats
