"""Levers set elsewhere reach the API: a kill switch published straight to the control topic (as
another API replica or another process would) is read at start-up before the API serves, followed
while it runs, and the guard refuses a plan's step under it: nothing mutates. The API orders levers by
their position in the topic, never by the time a message claims."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.control import ControlKind, ControlMessage
from store.base import Store
from store.chdb_backend import open_chdb
from store.migrate import migrate
from streams.kafka.embedded_broker import EmbeddedBroker
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fixtures import api as fx
from tests.signing import sealed

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(chdb_path: Path) -> Iterator[Store]:
    store = open_chdb(chdb_path, f"api_follow_{uuid.uuid4().hex[:8]}")
    migrate(store)
    fx.seed_fleet(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


def create_control_topic(broker: str, topic: str) -> None:
    """As ``breakfix topics create`` does: one partition, compacted."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
        finally:
            await admin.close()

    asyncio.run(create())


def set_elsewhere(broker: str, topic: str, scope: str, on: bool, claimed: timedelta = timedelta(0)) -> None:
    """A kill-switch lever written by someone other than the API under test (signed by the API's key,
    as another replica's would be); ``claimed`` moves the time the message claims off the clock."""
    msg = ControlMessage(
        id=f"ctl-elsewhere-{uuid.uuid4().hex}",
        time=datetime.now(UTC) + claimed,
        kind=ControlKind.KILLSWITCH,
        scope=scope,
        value={"on": on},
        actor="olga-on-another-replica",
        reason="set elsewhere",
    )

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, sealed(msg, role="api"), key=msg.key.encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def levers(api: fx.ApiServer) -> dict[str, Any]:
    return dict(httpx.get(api.url + "/killswitch", headers=api.headers("viewer"), timeout=30).json())


def seen_within(api: fx.ApiServer, want: dict[str, Any], timeout_s: float = 10) -> float:
    start = time.monotonic()
    while levers(api) != want:
        assert time.monotonic() - start < timeout_s, f"API still shows {levers(api)}, expected {want}"
        time.sleep(0.05)
    return time.monotonic() - start


def post(api: fx.ApiServer, path: str, role: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(api.url + path, headers=api.headers(role), json=body, timeout=30)


def test_kill_switch_set_elsewhere_stops_a_plan(fleet: Store, tansu: EmbeddedBroker, tmp_path: Path) -> None:
    topics = fx.new_topics()
    create_control_topic(tansu.url, topics.control)
    set_elsewhere(tansu.url, topics.control, "global", True)
    with KubeApiServer() as kube:
        fx.fleet_kube(kube)
        with fx.running_api(fleet, tansu.url, tmp_path, topics, kube, fx.Clock()) as api:
            # Read before the API served its first request (the store had no record of it).
            assert levers(api) == {"global": True, "pools": {}}
            set_elsewhere(tansu.url, topics.control, "global", False)
            seen_within(api, {"global": False, "pools": {}})

            body = {"pool": "train", "failure_class": "node_os", "action": "reboot", "nodes": ["gpu-node-2"]}
            plan = post(api, "/repair-plans", "operator", {**body, "dry_run": False}).json()
            token = post(api, f"/repair-plans/{plan['id']}/approve", "approver", {}).json()["approval_token"]
            set_elsewhere(tansu.url, topics.control, "pool:train", True)
            seen_within(api, {"global": False, "pools": {"train": True}})
            deadline = time.monotonic() + 15
            while not api.pipeline.state.levers.engaged("train"):  # the guard read it too
                assert time.monotonic() < deadline
                time.sleep(0.05)

            started = post(api, f"/repair-plans/{plan['id']}/execute", "operator", {"approval_token": token})
            assert started.status_code == 200, started.text
            wf_id = started.json()["workflow_id"]
            deadline = time.monotonic() + 30
            while (wf := httpx.get(f"{api.url}/workflows/{wf_id}", headers=api.headers("viewer")).json())[
                "status"
            ] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert wf["nodes"]["gpu-node-2"]["status"] == "rejected", wf  # by the guard's kill switch
            assert "killswitch" in wf["errors"][0]["detail"]
            assert not kube.node("gpu-node-2")["spec"].get("unschedulable")  # nothing mutated
            assert ("reboot", "reboot") not in api.agent.calls


def test_levers_follow_log_position_not_claimed_time(
    fleet: Store, tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    """A back-dated lever written after a newer-dated one wins; a lever dated a year ahead does not pin
    the API's view against the API's own later write (ordered by the offset the broker acknowledged)."""
    topics = fx.new_topics()
    create_control_topic(tansu.url, topics.control)
    with KubeApiServer() as kube:
        fx.fleet_kube(kube)
        with fx.running_api(fleet, tansu.url, tmp_path, topics, kube, fx.Clock()) as api:
            on = post(api, "/killswitch", "operator", {"on": True, "reason": "drill"})
            assert on.status_code == 200, on.text
            assert levers(api) == {"global": True, "pools": {}}
            set_elsewhere(tansu.url, topics.control, "global", False, claimed=-timedelta(days=1))
            seen_within(api, {"global": False, "pools": {}})  # written later, dated earlier: it wins

            set_elsewhere(tansu.url, topics.control, "global", True, claimed=timedelta(days=365))
            seen_within(api, {"global": True, "pools": {}})
            off = post(api, "/killswitch", "operator", {"on": False, "reason": "drill over"})
            assert off.status_code == 200, off.text
            assert levers(api) == {"global": False, "pools": {}}
            time.sleep(1.5)  # the follower reads the API's own "off" back, and nothing after it
            assert levers(api) == {"global": False, "pools": {}}
