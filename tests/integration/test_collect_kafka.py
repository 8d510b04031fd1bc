"""Collectors into Kafka: the validating producer and the CLI against the real Tansu broker."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.deadletter import DeadLetter
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.producer import SyncEventProducer, build_event

pytestmark = pytest.mark.integration


async def _create(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in topics])
    finally:
        await admin.close()


async def _consume(
    bootstrap: str, topic: str, n: int, key: bytes | None = None
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """The first ``n`` messages (with ``key``, when given) from the start of ``topic``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[tuple[bytes | None, dict[str, Any]]] = []
    try:
        async with asyncio.timeout(20):
            async for msg in consumer:
                if key is None or msg.key == key:
                    out.append((msg.key, orjson.loads(msg.value)))
                if len(out) >= n:
                    break
    finally:
        await consumer.stop()
    return out


def test_producer_keys_by_node_and_dead_letters_what_the_contract_refuses(
    tansu: EmbeddedBroker, unique: str
) -> None:
    events, dead = f"ev-{unique}", f"dl-{unique}"
    asyncio.run(_create(tansu.url, events, dead))
    good = build_event("node.kernel", "test", "gpu07", {"line": "NVRM: Xid (PCI:0000:3b:00): 79"})
    absurd = build_event("gpu.sample", "test", "gpu07", {"gpus": [{"index": 0, "temp_c": 1e9}]})
    with SyncEventProducer(tansu.url, topic=events, deadletter_topic=dead) as p:
        assert not isinstance(p.send(good), DeadLetter)
        refused = p.send(absurd)
        p.flush()
        assert isinstance(refused, DeadLetter) and refused.reason.value == "absurd_value"
        assert p.sent == {"node.kernel": 1, "dead_letter:absurd_value": 1}
    [(key, value)] = asyncio.run(_consume(tansu.url, events, 1))
    assert key == b"gpu07" and value["id"] == good["id"] and value["type"] == "node.kernel"
    [(dkey, letter)] = asyncio.run(_consume(tansu.url, dead, 1))
    assert dkey == b"gpu07" and letter["reason"] == "absurd_value" and letter["event_id"] == absurd["id"]


def test_cli_collect_kernel_once_into_kafka(tansu: EmbeddedBroker, tmp_path: Path) -> None:
    # The CLI publishes to the catalogue's topic; created here with partitions, as `topics create` would.
    with contextlib.suppress(TopicAlreadyExistsError):  # another test of the session made them
        asyncio.run(_create(tansu.url, "breakfix.events", "breakfix.deadletter"))
    log = tmp_path / "kern.log"
    log.write_text("NVRM: Xid (PCI:0000:86:00): 48, pid=4242, DBE\nunrelated line\n")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "breakfix"),
            "collect",
            "kernel",
            "--file",
            str(log),
            "--from-start",
            "--once",
            "--node",
            "gpu-kafka-01",
            "--broker",
            tansu.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stats = orjson.loads(done.stdout)
    assert stats["events"] == {"node.inventory": 1, "node.kernel": 1, "agent.heartbeat": 1}
    got = [v for _, v in asyncio.run(_consume(tansu.url, "breakfix.events", 3, key=b"gpu-kafka-01"))]
    assert [v["type"] for v in got] == ["node.inventory", "node.kernel", "agent.heartbeat"]
    assert got[1]["data"]["line"] == "NVRM: Xid (PCI:0000:86:00): 48, pid=4242, DBE"
