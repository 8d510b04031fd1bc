"""The sink end to end: a real Tansu broker, clickhouse-connect over HTTP to a chdb-backed endpoint
that we stop, slow down and restart, and a sink process killed with SIGKILL mid-run.

What must hold: nothing lost, nothing counted twice (row counts by id with FINAL), offsets committed
only for durable rows, a bad message never stops the sink.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fixtures.clickhouse_http import (
    ClickHouseHttpServer,
    clickhouse_http_fixture,  # noqa: F401 - the clickhouse_http fixture
)

from schemas.common import NodeState
from schemas.decision import ActionKind
from schemas.proposal import Placement, Proposal, Registration
from schemas.topics import TOPICS
from store.base import Store
from store.migrate import migrate
from store.server_backend import open_server
from store.spool import Chunk, Spool, SpoolFull
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.sink.stage import SinkConfig, SinkCore, run_sink

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def http_store(clickhouse_http: ClickHouseHttpServer, unique: str) -> Iterator[Store]:
    s = open_server(clickhouse_http.url, f"k_{unique}", connect_timeout_s=1, send_receive_timeout_s=10)
    migrate(s)
    yield s
    clickhouse_http.set_insert_delay(0)
    if not s.ping():
        clickhouse_http.start()
    s.command(f"DROP DATABASE IF EXISTS {s.database}")
    s.close()


def _event(i: int) -> bytes:
    return orjson.dumps({
        "id": f"ev-{i}", "type": "gpu.xid", "source": "test", "time": "2025-03-01T00:00:00Z",
        "node": f"node-{i % 13}", "data": {"gpu": i % 8, "xid": 79},
    })  # fmt: skip


def _count(store: Store, table: str = "events") -> tuple[int, int]:
    r = store.query(f"SELECT count(), uniqExact(id) FROM {store.database}.{table} FINAL").rows[0]
    return int(r[0]), int(r[1])


def _messages(n: int, start: int = 0) -> list[Chunk]:
    offsets = list(range(start, start + n))
    return [Chunk("breakfix.events", "t", 0, offsets, [1_740_787_200_000] * n, [_event(i) for i in offsets])]


def test_store_down_spools_then_drains_in_order(
    http_store: Store, clickhouse_http: ClickHouseHttpServer, tmp_path: Path
) -> None:
    core = SinkCore(http_store, Spool(tmp_path / "spool"))
    assert core.flush(_messages(100)) == "inserted"
    clickhouse_http.stop()
    assert core.flush(_messages(100, start=100)) == "spooled"
    assert core.flush(_messages(100, start=200)) == "spooled"
    assert len(core.spool.files()) == 2
    clickhouse_http.start()
    # While older batches wait, a new batch queues behind them; the flush drains all three in order.
    assert core.flush(_messages(100, start=300)) == "spooled"
    assert core.spool.files() == []
    assert _count(http_store) == (400, 400)
    assert core.stats.drained_batches == 3


def test_full_spool_pushes_back_instead_of_dropping(
    http_store: Store, clickhouse_http: ClickHouseHttpServer, tmp_path: Path
) -> None:
    core = SinkCore(http_store, Spool(tmp_path / "spool", max_bytes=20_000))
    clickhouse_http.stop()
    core.flush(_messages(100))
    with pytest.raises(SpoolFull):
        core.flush(_messages(100, start=100))
    clickhouse_http.start()
    assert core.drain() == 1 and _count(http_store) == (100, 100)


async def _create_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        parts = {t.name: 3 if t.name == "breakfix.events" else 1 for t in TOPICS}
        await admin.create_topics([NewTopic(prefix + t, parts[t], replication_factor=1) for t in parts])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i, v in enumerate(values):
            await producer.send(topic, v, key=f"node-{i % 13}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        return sum([await c.committed(TopicPartition(topic, p)) or 0 for p in range(3)])
    finally:
        await c.stop()


def test_sink_consumes_every_topic_spools_while_down_and_commits_after_durability(
    tansu: EmbeddedBroker,
    http_store: Store,
    clickhouse_http: ClickHouseHttpServer,
    unique: str,
    tmp_path: Path,
) -> None:
    prefix, group = f"s{unique}.", f"sink-{unique}"
    events = [_event(i) for i in range(300)] + [b"{broken json"]
    decision = {
        "id": "d-1", "time": "2025-03-01T00:01:00Z", "node": "node-1", "from_state": "Healthy",
        "to_state": "Quarantined", "trigger": "xid79", "failure_class": "gpu_hardware", "confidence": 0.99,
        "action": "drain", "mode": "auto", "executable": True, "reasons": ["xid 79"], "evidence": ["ev-1"],
        "policy_version": "p1",
    }  # fmt: skip

    async def scenario() -> tuple[int, Any]:
        await _create_topics(tansu.url, prefix)
        await _produce(tansu.url, prefix + "breakfix.events", events)
        await _produce(tansu.url, prefix + "breakfix.decisions", [orjson.dumps(decision)])
        clickhouse_http.stop()  # ClickHouse is down when the sink starts consuming
        core = SinkCore(http_store, Spool(tmp_path / "spool"))
        cfg = SinkConfig(bootstrap=tansu.url, group_id=group, topic_prefix=prefix, batch_rows=100,
                         batch_interval_s=0.2)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(cfg, core, stop))
        deadline = time.monotonic() + 40
        while core.stats.messages < len(events) + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert core.stats.spooled_batches > 0 and core.spool.files()
        clickhouse_http.start()
        while core.spool.files() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        stats = await task
        return await _committed(tansu.url, group, prefix + "breakfix.events"), stats

    committed, stats = asyncio.run(scenario())
    assert _count(http_store) == (300, 300)
    assert _count(http_store, "decisions") == (1, 1)
    history = http_store.query(f"SELECT decision_id FROM {http_store.database}.node_state_history FINAL").rows
    assert history == [("d-1",)]
    bad = http_store.query(f"SELECT reason, source FROM {http_store.database}.dead_letters FINAL").rows
    assert (
        len(bad) == 1 and bad[0][0] == "sink_rejected" and bad[0][1].startswith(prefix + "breakfix.events/")
    )
    assert committed == len(events)
    assert stats.drained_batches == stats.spooled_batches


def _start_sink(
    tansu: EmbeddedBroker, dsn: str, prefix: str, group: str, spool: Path, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "streams.sink.stage", "--bootstrap", tansu.url, "--store", dsn,
           "--spool", str(spool), "--group", group, "--topic-prefix", prefix,
           "--batch-rows", "200", "--batch-interval", "0.2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_sink_killed_mid_batch_loses_and_duplicates_nothing(
    tansu: EmbeddedBroker,
    http_store: Store,
    clickhouse_http: ClickHouseHttpServer,
    unique: str,
    tmp_path: Path,
) -> None:
    n = 4000
    prefix, group = f"k{unique}.", f"sink-{unique}"
    asyncio.run(_create_topics(tansu.url, prefix))
    asyncio.run(_produce(tansu.url, prefix + "breakfix.events", [_event(i) for i in range(n)]))
    dsn = f"{clickhouse_http.url}/?database={http_store.database}"
    spool, log = tmp_path / "spool", tmp_path / "sink.log"
    clickhouse_http.set_insert_delay(0.3)  # rows are written, then the answer lags: kills land mid-insert
    first = _start_sink(tansu, dsn, prefix, group, spool, log)
    try:
        deadline = time.monotonic() + 60
        while _count(http_store)[0] < 600 and time.monotonic() < deadline:
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        written_before = _count(http_store)[0]
        assert 0 < written_before < n, log.read_text()
    finally:
        if first.poll() is None:
            first.kill()
    clickhouse_http.set_insert_delay(0)
    second = _start_sink(tansu, dsn, prefix, group, spool, log)
    try:
        deadline = time.monotonic() + 90
        while _count(http_store)[0] < n and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # anything redelivered after reaching n would show up as a duplicate
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, log.read_text()
    finally:
        if second.poll() is None:
            second.kill()
    assert _count(http_store) == (n, n), log.read_text()
    raw = http_store.query(f"SELECT count() FROM {http_store.database}.events").rows[0][0]
    assert raw >= n  # duplicates may exist physically (redelivered batch); FINAL removes them
    assert asyncio.run(_committed(tansu.url, group, prefix + "breakfix.events")) == n


def _proposal_topic_records() -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """What the node stage sends on breakfix.proposals (streams/pipeline/node_shell.py): progress marks and
    registrations for the guard's ordering, and proposals, told apart by the breakfix-kind header."""
    placement = Placement(pool="p0", rack="r1", sku="h100", gpus=8)
    t = datetime(2025, 3, 1, tzinfo=UTC)
    proposal = Proposal(
        id="prop-1", time=t, node="node-1", from_state=NodeState.SUSPECT, to_state=NodeState.QUARANTINED,
        trigger="confidence_over_threshold", failure_class="gpu_hardware", confidence=0.9,
        action=ActionKind.REBOOT, reasons=["xid 79"], evidence=["ev-1"], evidence_time=t, placement=placement,
    )  # fmt: skip
    registration = Registration(node="node-1", time=t, placement=placement)
    order = orjson.dumps([t.timestamp(), "node-1", 0])
    return [
        (registration.model_dump_json().encode(), [("breakfix-kind", b"registration"),
                                                   ("breakfix-partition", b"0"), ("breakfix-order", order)]),
        (orjson.dumps({"partition": 0, "bound": [t.timestamp(), "", 0]}),
         [("breakfix-kind", b"progress"), ("breakfix-partition", b"0")]),
        (proposal.model_dump_json().encode(), [("breakfix-kind", b"proposal"), ("breakfix-partition", b"0"),
                                               ("breakfix-order", order), ("breakfix-id", b"prop-1")]),
        (orjson.dumps({"partition": 1, "bound": [t.timestamp(), "", 1]}),
         [("breakfix-kind", b"progress"), ("breakfix-partition", b"1")]),
    ]  # fmt: skip


def test_guard_marks_on_the_proposals_topic_are_skipped_and_proposals_stored(
    tansu: EmbeddedBroker, http_store: Store, unique: str, tmp_path: Path
) -> None:
    prefix, group = f"g{unique}.", f"sink-{unique}"
    records = _proposal_topic_records()

    async def scenario() -> tuple[int, Any]:
        await _create_topics(tansu.url, prefix)
        producer = AIOKafkaProducer(bootstrap_servers=tansu.url)
        await producer.start()
        try:
            for value, headers in records:
                await producer.send_and_wait(prefix + "breakfix.proposals", value, key=b"", headers=headers)
        finally:
            await producer.stop()
        core = SinkCore(http_store, Spool(tmp_path / "spool"))
        cfg = SinkConfig(bootstrap=tansu.url, group_id=group, topic_prefix=prefix, batch_rows=100,
                         batch_interval_s=0.2)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(cfg, core, stop))
        deadline = time.monotonic() + 30
        while core.stats.messages + core.stats.skipped < len(records) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        stats = await task
        return await _committed(tansu.url, group, prefix + "breakfix.proposals"), stats

    committed, stats = asyncio.run(scenario())
    assert stats.skipped == 3 and stats.messages == 1
    assert _count(http_store, "proposals") == (1, 1)
    assert _count(http_store, "dead_letters") == (0, 0)
    assert committed == len(records)  # skipped marks are committed past, never redelivered forever
