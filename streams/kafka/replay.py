"""``breakfix replay --into-kafka``: republish a recording into the events topic, marked as replay.

Every JSON object gets ``"replay": true`` before it leaves, so the decisions made from it carry
``replay=true`` and are never executable: no actuator touches infrastructure because of a replay.
Lifecycle events (tenant reports, repair status, action results) are sealed with the ``replay`` key
after they are marked, the marker inside the seal: the live node stage refuses an unsigned
replay-marked lifecycle event (``streams.signed_input``). Lines that are not JSON objects are sent
unchanged (the node stage dead-letters them, as it would any producer's garbage). Node events are
keyed by node id; node-less events (pool-wide changes, cluster scheduler state) are written to every
partition, because each partition's nodes must see them at the same place in their stream as offline
replay does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from schemas.recording import iter_lines
from schemas.signing import SEAL, Signer
from schemas.topics import Topic
from streams.kafka.client import kafka_options
from streams.keys import load_signer
from streams.settings import StreamSettings
from streams.signed_input import REPLAY_SIGNER, SIGNERS

EVENTS = Topic.EVENTS


@dataclass
class ReplayStats:
    lines: int = 0
    messages: int = 0
    unparsable: int = 0
    seconds: float = 0.0


def mark_replay(raw: bytes, signer: Signer | None = None) -> tuple[bytes, bytes | None, float | None]:
    """(payload with replay=true, node key or None for node-less, event time if readable); a
    lifecycle event sealed by ``signer`` (the ``replay`` key) when one is given."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, b"", None
    if not isinstance(obj, dict):
        return raw, b"", None
    obj["replay"] = True
    if signer is not None and obj.get("type") in SIGNERS:
        obj = signer.seal({k: v for k, v in obj.items() if k != SEAL}, time.time())
    node = obj.get("node")
    t = _time_of(obj.get("time"))
    return orjson.dumps(obj), (node.encode() if isinstance(node, str) and node else None), t


def _time_of(value: object) -> float | None:
    from datetime import datetime

    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


async def replay_into_kafka(
    recording: str | Path,
    settings: StreamSettings,
    speed: float | None = None,
    as_fast_as_possible: bool = False,
) -> ReplayStats:
    """Republish ``recording``: ``speed`` 60 plays an hour in a minute; ``as_fast_as_possible`` no pacing."""
    if not as_fast_as_possible and (speed is None or speed <= 0):
        raise ValueError("give a positive speed, or as_fast_as_possible")
    topic = settings.topic(EVENTS)
    signer = load_signer(settings, REPLAY_SIGNER)  # refuses to start without it, naming the command
    producer = AIOKafkaProducer(**kafka_options(settings=settings), acks="all", linger_ms=5)
    await producer.start()
    stats = ReplayStats()
    started = time.monotonic()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        first: float | None = None
        for _, raw in iter_lines(recording):
            stats.lines += 1
            payload, key, t = mark_replay(raw, signer)
            if t is None and key == b"":
                stats.unparsable += 1
            if not as_fast_as_possible and t is not None and speed:
                first = t if first is None else first
                delay = (t - first) / speed - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            if key is None:
                for p in partitions:
                    await producer.send(topic, payload, key=b"", partition=p)
                    stats.messages += 1
            else:
                await producer.send(topic, payload, key=key)
                stats.messages += 1
        await producer.flush()
    finally:
        await producer.stop()
    stats.seconds = time.monotonic() - started
    return stats
