"""A forged lever written to the control topic never reaches the store's ``control`` table: the real
sink (its consumer on the real Tansu broker, into a real chdb store) verifies each lever with the
readers' own gate and dead-letters the ones the API did not sign, so neither the API's lever
read-back (``GET /levers``) nor a restarted API's kill-switch seed (``GET /killswitch`` of an API
whose control topic holds nothing yet) ever shows one; the genuine lever does. A sink without a trust
file fails closed: every lever is a dead letter."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.control import ControlKind, ControlMessage
from schemas.signing import Keyring
from schemas.topics import Topic
from store.base import Store
from store.chdb_backend import open_chdb
from store.migrate import migrate
from store.spool import Spool
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.keys import load_keyring
from streams.settings import StreamSettings
from streams.sink.stage import SinkConfig, SinkCore, run_sink
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fixtures import api as fx
from tests.integration.test_api_control_follow import create_control_topic
from tests.signing import sealed

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(chdb_path: Path) -> Iterator[Store]:
    store = open_chdb(chdb_path, f"sink_levers_{uuid.uuid4().hex[:8]}")
    migrate(store)
    fx.seed_fleet(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


def lever(kind: ControlKind, scope: str, value: dict[str, object], actor: str) -> ControlMessage:
    return ControlMessage(
        id=f"ctl-{uuid.uuid4().hex[:12]}", time=datetime.now(UTC), kind=kind, scope=scope, value=value,
        actor=actor, reason="drill",
    )  # fmt: skip


GENUINE = lever(ControlKind.KILLSWITCH, "pool:train", {"on": True}, "ann")


def forged() -> list[tuple[bytes, str]]:
    """Levers written after the genuine one, each with the reason it is refused: stored, each would
    win the read-back and the seed (one would add an exclusion)."""
    unsigned_off = lever(ControlKind.KILLSWITCH, "pool:train", {"on": False}, "mallory")
    exclusion = lever(ControlKind.EXCLUSION, "pool:infer", {"excluded": True}, "mallory")
    return [
        (orjson.dumps(unsigned_off.model_dump(mode="json")), "unsigned"),
        (sealed(lever(ControlKind.KILLSWITCH, "pool:train", {"on": False}, "mallory"), role="guard"),
         "wrong_signer"),
        (sealed(lever(ControlKind.KILLSWITCH, "global", {"on": True}, "mallory"), role="actuators"),
         "wrong_signer"),
        (orjson.dumps(exclusion.model_dump(mode="json")), "unsigned"),
    ]  # fmt: skip


def sink_control(
    broker: str, store: Store, tmp: Path, keyring: Keyring | None, values: list[bytes]
) -> SinkCore:
    """Write ``values`` to a fresh control topic and run the real sink over it until it stored them."""
    prefix = f"t{uuid.uuid4().hex[:8]}."

    async def scenario() -> SinkCore:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(prefix + Topic.CONTROL, 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            for v in values:
                await producer.send_and_wait(prefix + Topic.CONTROL, v, key=b"lever")
        finally:
            await producer.stop()
        core = SinkCore(store, Spool(tmp / f"spool-{prefix}"), keyring)
        cfg = SinkConfig(bootstrap=broker, group_id=f"sink-{prefix}", topics=(Topic.CONTROL,),
                         topic_prefix=prefix, batch_rows=100, batch_interval_s=0.2)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(cfg, core, stop))
        deadline = time.monotonic() + 30
        while core.stats.messages < len(values) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await task
        return core

    core = asyncio.run(scenario())
    assert core.stats.messages == len(values)
    return core


def test_forged_levers_never_reach_the_read_back_or_the_seed(
    fleet: Store, tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    keyring = load_keyring(StreamSettings())
    refused = forged()
    sink_control(tansu.url, fleet, tmp_path, keyring, [sealed(GENUINE, role="api"), *(v for v, _ in refused)])

    db = fleet.database
    stored = fleet.query(f"SELECT id, actor FROM {db}.control FINAL").rows
    assert [tuple(r) for r in stored] == [(GENUINE.id, "ann")]
    reasons = sorted(r[0] for r in fleet.query(f"SELECT reason FROM {db}.dead_letters FINAL").rows)
    assert reasons == sorted(reason for _, reason in refused)
    assert fleet.query(f"SELECT count() FROM {db}.audit FINAL WHERE actor = 'mallory'").rows[0][0] == 0

    # The API over that store, its own control topic empty: what it shows and seeds is the store's.
    topics = fx.new_topics()
    create_control_topic(tansu.url, topics.control)
    with KubeApiServer() as kube:
        fx.fleet_kube(kube)
        with fx.running_api(fleet, tansu.url, tmp_path, topics, kube, fx.Clock()) as api:
            shown = httpx.get(api.url + "/levers", headers=api.headers("viewer"), timeout=30).json()
            assert [(lv["kind"], lv["scope"], lv["value"], lv["actor"]) for lv in shown] == [
                ("killswitch", "pool:train", {"on": True}, "ann")
            ]
            seeded = httpx.get(api.url + "/killswitch", headers=api.headers("viewer"), timeout=30).json()
            assert seeded == {"global": False, "pools": {"train": True}}


def test_a_sink_without_a_trust_file_records_no_lever(
    fleet: Store, tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    """Failing closed: even the API's genuine lever is a dead letter (``unknown_key``) there."""
    sink_control(tansu.url, fleet, tmp_path, None, [sealed(GENUINE, role="api")])
    db = fleet.database
    assert fleet.query(f"SELECT count() FROM {db}.control FINAL").rows[0][0] == 0
    [(reason, message)] = fleet.query(f"SELECT reason, message FROM {db}.dead_letters FINAL").rows
    assert reason == "unknown_key" and "trust file" in message
