"""The broker SIGKILLed mid-stream and restarted on the same storage: nothing lost, nothing doubled.

Tansu runs on its one persistent engine in this build, ``s3://`` (postgres and sqlite are not compiled
in; see tests/fixtures/s3.py), against a loopback S3 server that outlives it. A simulator recording
is published at a paced rate by ``replay --into-kafka``'s publisher while two node-stage workers
consume it; the broker is killed part-way through the publishing and restarted on the same port and
bucket. The publisher and the workers are not restarted: they reconnect on their own. The decisions
topic must then hold exactly what ``breakfix replay --offline`` makes of the same recording (same ids
per node): each decision once (a re-sent id counted apart), no losses. Figures: events in,
decisions out, re-sent ids, losses, time to recover.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from integration.test_stream_kafka import Workers, _read, by_node, diff, read_decisions
from reliability.figures import record
from reliability.safety import assert_safe

from breakfix.cli.replay_cmd import run_offline
from policy.model import load_policy
from schemas.recording import iter_lines
from schemas.topics import TOPICS
from sim.simulator.clock import parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve
from streams.kafka.embedded_broker import EmbeddedBroker, wait_for_port
from streams.kafka.replay import EVENTS, mark_replay, replay_into_kafka
from streams.settings import StreamSettings
from tests.fixtures.s3 import S3Server, s3_server_fixture  # noqa: F401 - the s3_server fixture
from tests.fixtures.streams import isolated_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.alone]
SCENARIOS = ["xid79-fallen-off-bus", "silent-agent", "tenant-report", "driver-rollout"]
NODES, HOURS = 20, 1
PUBLISH_S = 40.0
"""Wall time the paced publishing takes: the kill lands inside it."""
KILL_AFTER = 1
"""Decisions already out when the broker is killed: committed offsets and table state exist by then."""
DOWN_S = 1.0


@pytest.fixture
def broker(s3_server: S3Server, unique: str, tmp_path: Path) -> Iterator[EmbeddedBroker]:
    bucket = s3_server.create_bucket(f"breakfix-{unique}")
    b = EmbeddedBroker(log_dir=tmp_path, storage_engine=f"s3://{bucket}/", env=s3_server.env)
    with b:
        yield b


@pytest.fixture
def settings(broker: EmbeddedBroker, unique: str, tmp_path: Path) -> StreamSettings:
    # Every broker request is one or more object-store requests on s3://: the default 50 ms empty
    # fetches and progress marks kept the loopback S3 server saturated (no decision in 175 s).
    return isolated_settings(
        broker.url,
        unique,
        tmp_path,
        "r",
        session_timeout_s=4,
        heartbeat_s=0.5,
        fetch_max_wait_ms=500,
        progress_s=0.5,
    )


def _recording(path: Path) -> Path:
    sc = [load_scenario(p) for p in resolve(SCENARIOS)]
    simulate(
        SimConfig(nodes=NODES, hours=HOURS, seed=3, start=parse_start("2025-01-01T00:00:00Z"), scenarios=sc),
        path,
    )
    return path


def _published_ids(recording: Path) -> Counter[str]:
    """Event ids the publisher sends: node-less events once per partition of the events topic."""
    partitions = next(t.partitions for t in TOPICS if t.name == EVENTS)
    out: Counter[str] = Counter()
    for _, raw in iter_lines(recording):
        _, key, _ = mark_replay(raw)
        out[orjson.loads(raw)["id"]] += partitions if key is None else 1
    return out


def _stored_ids(settings: StreamSettings, n: int) -> Counter[str]:
    raw = asyncio.run(_read(settings, EVENTS, lambda v: len(v) >= n, 60.0, 1.0))
    return Counter(orjson.loads(v)["id"] for v in raw)


def _decision_count(settings: StreamSettings) -> int:
    return len(asyncio.run(_read(settings, "breakfix.decisions", lambda v: False, 1.0, 0.0)))


def test_broker_killed_mid_stream_and_restarted_on_its_storage_loses_and_duplicates_nothing(
    broker: EmbeddedBroker, settings: StreamSettings, tmp_path: Path
) -> None:
    rec = _recording(tmp_path / "rec.jsonl")
    offline, _ = run_offline(str(rec), load_policy(None), None, None, None, False)
    assert len(offline) >= 10, "the recording must produce decisions, or the comparison proves nothing"
    pool = Workers(settings, tmp_path)
    try:
        pool.start(0)
        pool.start(1)
        with ThreadPoolExecutor(1) as ex:
            published = ex.submit(
                asyncio.run, replay_into_kafka(rec, settings, speed=HOURS * 3600 / PUBLISH_S)
            )
            before = 0
            while before < KILL_AFTER and not published.done():
                before = _decision_count(settings)
            assert not published.done(), "the kill must land while the recording is being published"
            broker.kill()
            killed_at = time.monotonic()
            time.sleep(DOWN_S)
            broker.start()
            wait_for_port("127.0.0.1", broker.port, 10.0)
            restarted_s = time.monotonic() - killed_at
            while _decision_count(settings) <= before and time.monotonic() - killed_at < 120:
                time.sleep(0.2)
            recovered_s = time.monotonic() - killed_at
            stats = published.result(timeout=180)
        streamed = read_decisions(settings, len(offline), timeout_s=150.0)
        sent, stored = _published_ids(rec), _stored_ids(settings, stats.messages)
    finally:
        pool.stop_all()
    ids = Counter(d.id for d in streamed)
    want = {d.id for d in offline}
    # A decision whose acknowledgement died with the broker is sent again under the same id (as 43
    # events were): at-least-once, and consumers act once per id (the actuator journal's key). What
    # must never happen is a second, different decision or a changed one under the same id.
    once = list({d.id: d for d in streamed}.values())
    assert all(d == next(x for x in streamed if x.id == d.id) for d in streamed), "a re-sent id changed"
    figures = record(
        "faults.broker_restart",
        storage_engine="s3 (Tansu 0.6.0 dynostore, moto_server)",
        recording=f"{NODES} nodes x {HOURS} h",
        events_in=stats.messages,
        events_stored=sum(stored.values()),
        events_lost_by_broker=sum((sent - stored).values()),
        events_stored_twice=sum((stored - sent).values()),
        decisions_out=len(streamed),
        decisions_expected=len(want),
        decisions_before_kill=before,
        decisions_resent_same_id=sum(n - 1 for n in ids.values()),
        losses=len(want - set(ids)),
        unexpected=len(set(ids) - want),
        broker_back_s=round(restarted_s, 2),
        time_to_recover_s=round(recovered_s, 2),
        publish_s=round(stats.seconds, 2),
    )
    assert KILL_AFTER <= before < len(want), "the kill must happen mid-stream, some decisions out"
    assert figures["events_lost_by_broker"] == 0, "an acknowledged event did not survive the restart"
    assert figures["losses"] == 0 and figures["unexpected"] == 0, pool.logs()
    assert by_node(once) == by_node(offline), diff(once, offline)
    # The topic is read partition by partition; the invariants need the log in decision-time order
    # (a stable sort keeps each node's own order, which one partition preserves).
    assert_safe(once, rec)
