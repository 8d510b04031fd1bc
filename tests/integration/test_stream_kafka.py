"""The streaming pipeline on the real Tansu broker: worker processes, a recording replayed into Kafka,
decisions read back from the decisions topic and compared with offline replay of the same recording
(open loop: no actuators)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from reliability.safety import assert_safe

from breakfix.cli.replay_cmd import run_offline
from policy.model import load_policy
from schemas.deadletter import DeadLetterReason
from schemas.decision import Decision
from schemas.signing import verify
from schemas.topics import TOPIC_BY_NAME, Topic
from sim.simulator.clock import parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.replay import replay_into_kafka
from streams.keys import load_keyring
from streams.pipeline import workers
from streams.settings import StreamSettings
from tests.fixtures.streams import isolated_settings

pytestmark = pytest.mark.integration
SCENARIOS = ["xid79-fallen-off-bus", "silent-agent", "tenant-report", "driver-rollout"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "rec.jsonl"
    sc = [load_scenario(p) for p in resolve(SCENARIOS)]
    simulate(
        SimConfig(nodes=40, hours=2, seed=3, start=parse_start("2025-01-01T00:00:00Z"), scenarios=sc), path
    )
    return path


@pytest.fixture(scope="module")
def offline(recording: Path) -> list[Decision]:
    decisions, _ = run_offline(str(recording), load_policy(None), None, None, None, False)
    assert_safe(decisions, recording)
    assert len(decisions) >= 10, "the recording must produce decisions, or the comparison proves nothing"
    return decisions


@pytest.fixture
def settings(tansu: EmbeddedBroker, unique: str, tmp_path: Path) -> StreamSettings:
    return isolated_settings(tansu.url, unique, tmp_path, "t")


class Workers:
    """Worker processes of one test; every one is stopped (or killed) at the end."""

    def __init__(self, settings: StreamSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, index: int) -> None:
        self.procs[index] = workers.start_worker(self.settings, index, self.log_dir / f"worker-{index}.log")

    def kill9(self, index: int) -> None:
        proc = self.procs.pop(index)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            workers.stop(proc)
        self.procs.clear()

    def logs(self, tail: int | None = 3000) -> str:
        """The workers' logs, the last ``tail`` characters of each (all of them for None)."""
        return "\n".join(
            p.read_text(errors="replace")[-tail if tail else 0 :]
            for p in sorted(self.log_dir.glob("worker-*.log"))
        )


@pytest.fixture
def pool(settings: StreamSettings, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(settings, tmp_path)
    yield w
    w.stop_all()


async def _read(
    settings: StreamSettings, topic: str, until: Any, timeout_s: float, settle_s: float
) -> list[bytes]:
    """Read ``topic`` from the start until ``until(values)`` holds, then ``settle_s`` more for extras."""
    c = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await c.start()
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    done_at: float | None = None
    try:
        while time.monotonic() < deadline and (done_at is None or time.monotonic() < done_at):
            for msgs in (await c.getmany(timeout_ms=300)).values():
                out.extend(m.value for m in msgs if m.value is not None)
            if done_at is None and until(out):
                done_at = time.monotonic() + settle_s
    finally:
        await c.stop()
    return out


def read_decisions(settings: StreamSettings, n: int, timeout_s: float = 90.0) -> list[Decision]:
    """The decisions on the topic, each checked to carry the guard's valid seal (the signed path)."""
    raw = asyncio.run(_read(settings, "breakfix.decisions", lambda v: len(v) >= n, timeout_s, 3.0))
    ring = load_keyring(settings)
    seals = [verify(orjson.loads(v), ring, {"guard"}, time.time(), None) for v in raw]
    assert all(s.ok and s.epoch >= 1 for s in seals), [s.detail for s in seals if not s.ok][:3]
    return [Decision.model_validate_json(v) for v in raw]


def by_node(decisions: list[Decision]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in decisions:
        out.setdefault(d.node, []).append(d.id)
    return out


def diff(streamed: list[Decision], offline: list[Decision]) -> str:
    a, b = by_node(streamed), by_node(offline)
    return "; ".join(
        f"{n}: streamed {a.get(n)} offline {b.get(n)}"
        for n in sorted(set(a) | set(b))
        if a.get(n) != b.get(n)
    )


def test_decisions_topic_equals_offline_replay_and_replay_never_executes(
    settings: StreamSettings, pool: Workers, recording: Path, offline: list[Decision]
) -> None:
    pool.start(0)
    stats = asyncio.run(replay_into_kafka(recording, settings, as_fast_as_possible=True))
    assert stats.lines > 20_000
    streamed = read_decisions(settings, len(offline))
    assert_safe(streamed, recording)
    assert len(streamed) == len(offline), pool.logs()
    assert by_node(streamed) == by_node(offline)
    # Replayed input: every decision says so and none may execute.
    assert all(d.replay and not d.executable for d in streamed)


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_worker_killed_with_sigkill_and_restarted_loses_and_duplicates_nothing(
    settings: StreamSettings, tmp_path: Path, recording: Path, offline: list[Decision], store: str
) -> None:
    """One of two workers is killed mid-run and restarted (with RocksDB: on its own on-disk state)."""
    pool = Workers(settings.model_copy(update={"store": store}), tmp_path)
    try:
        _kill_and_restart(pool, recording, offline)
    finally:
        pool.stop_all()


def _kill_and_restart(pool: Workers, recording: Path, offline: list[Decision]) -> None:
    settings = pool.settings
    pool.start(0)
    pool.start(1)
    asyncio.run(replay_into_kafka(recording, settings, as_fast_as_possible=True))
    first = asyncio.run(_read(settings, "breakfix.decisions", lambda v: len(v) >= 2, 60.0, 0.0))
    assert len(first) < len(offline), "the kill must happen mid-run"
    pool.kill9(1)
    time.sleep(1.0)
    pool.start(1)
    streamed = read_decisions(settings, len(offline), timeout_s=120.0)
    assert_safe(streamed, recording)
    ids = [d.id for d in streamed]
    assert len(ids) == len(set(ids)), "a decision was sent twice"
    assert by_node(streamed) == by_node(offline), f"{diff(streamed, offline)} ({pool.logs()})"
    # Restored state, not a fresh start: re-processing never met a node it did not know.
    letters = asyncio.run(_read(settings, "breakfix.deadletter", lambda v: False, 2.0, 0.0))
    assert letters == []


def _event(
    i: int, node: str, type_: str, data: dict[str, Any], t: str = "2025-01-01T01:00:00Z"
) -> dict[str, Any]:
    return {"id": f"e{i}", "type": type_, "source": "test", "time": t, "node": node, "data": data}


def test_every_bad_input_class_is_dead_lettered_and_the_pipeline_keeps_going(
    settings: StreamSettings, pool: Workers
) -> None:
    inv = _event(0, "n1", "node.inventory", {"pool": "p", "rack": "r", "sku": "H100", "gpus": 8})
    sample = {"gpus": [{"index": 0, "temp_c": 50}]}
    bad: list[tuple[str, bytes]] = [
        ("n1", b"{not json"),
        ("n1", orjson.dumps(_event(1, "n1", "foo.bar", {}))),
        (
            "n1",
            orjson.dumps({k: v for k, v in _event(2, "n1", "gpu.sample", sample).items() if k != "source"}),
        ),
        ("n1", orjson.dumps(_event(3, "n1", "gpu.sample", sample, t="2025-01-01T01:00:00"))),
        ("n1", orjson.dumps(_event(4, "n1", "gpu.sample", {"gpus": [{"index": 0, "temp_c": 1e9}]}))),
        ("ghost", orjson.dumps(_event(5, "ghost", "gpu.sample", sample))),
        ("n1", orjson.dumps(inv)),  # the same id again: duplicate
        ("n1", orjson.dumps(_event(6, "n1", "gpu.sample", sample, t="2025-01-01T00:50:00Z"))),
        ("n1", orjson.dumps(_event(7, "n1", "gpu.sample", sample, t="2025-01-01T02:00:00Z"))),
        ("n1", orjson.dumps(_event(8, "n1", "gpu.sample", sample, t="2024-12-31T18:00:00Z"))),
    ]
    expected = {
        DeadLetterReason.MALFORMED_JSON,
        DeadLetterReason.UNKNOWN_TYPE,
        DeadLetterReason.MISSING_FIELD,
        DeadLetterReason.INVALID_VALUE,
        DeadLetterReason.ABSURD_VALUE,
        DeadLetterReason.UNKNOWN_NODE,
        DeadLetterReason.DUPLICATE,
        DeadLetterReason.OUT_OF_ORDER,
        DeadLetterReason.FAR_FUTURE,
        DeadLetterReason.STALE,
    }
    xid = _event(9, "n1", "gpu.xid", {"gpu": 3, "xid": 79}, t="2025-01-01T01:00:05Z")

    async def produce() -> None:
        p = AIOKafkaProducer(bootstrap_servers=settings.broker)
        await p.start()
        try:
            topic = settings.topic("breakfix.events")
            await p.send_and_wait(topic, orjson.dumps(inv), key=b"n1")
            for key, value in bad:
                await p.send_and_wait(topic, value, key=key.encode())
            await p.send_and_wait(topic, orjson.dumps(xid), key=b"n1")  # good input after the bad
        finally:
            await p.stop()

    pool.start(0)
    asyncio.run(produce())
    letters = asyncio.run(_read(settings, "breakfix.deadletter", lambda v: len(v) >= len(bad), 60.0, 1.0))
    reasons = [orjson.loads(v)["reason"] for v in letters]
    assert sorted(reasons) == sorted(r.value for r in expected), pool.logs()
    decisions = read_decisions(settings, 1, timeout_s=30.0)
    assert_safe(decisions)
    assert [d.node for d in decisions] == ["n1"], "the stage stopped after bad input"
    assert decisions[0].evidence and not decisions[0].replay


def test_a_pool_change_keyed_by_one_node_is_fanned_out_by_the_pipeline(
    settings: StreamSettings, pool: Workers, tmp_path: Path
) -> None:
    """A third party writes a pool-wide driver change keyed by one node (not through ``breakfix
    produce``): the worker's node stage publishes its copy to every partition, and the GPU failures on
    the pool's other nodes that follow are the change's regression, as offline replay decides. The
    failures are written once the copies are on the topic, as a real rollout's follow it by minutes."""
    from tests.unit.test_scoped_change import named_rollout

    path, named = named_rollout(tmp_path)
    offline, _ = run_offline(str(path), load_policy(None), None, None, None, False)
    lines = path.read_bytes().splitlines(keepends=True)
    cut = next(i for i, raw in enumerate(lines) if b'"change.event"' in raw) + 1
    change_id = orjson.loads(lines[cut - 1])["id"].encode()
    (tmp_path / "before.jsonl").write_bytes(b"".join(lines[:cut]))
    (tmp_path / "after.jsonl").write_bytes(b"".join(lines[cut:]))
    pool.start(0)
    asyncio.run(replay_into_kafka(tmp_path / "before.jsonl", settings, as_fast_as_possible=True))
    parts = TOPIC_BY_NAME[Topic.EVENTS].partitions
    seen = asyncio.run(
        _read(settings, "breakfix.events", lambda v: sum(change_id in m for m in v) > parts, 90.0, 0.5)
    )
    assert sum(change_id in m for m in seen) == parts + 1, pool.logs()  # the original and one copy each
    asyncio.run(replay_into_kafka(tmp_path / "after.jsonl", settings, as_fast_as_possible=True))
    streamed = read_decisions(settings, len(offline))
    changed = {d.node for d in streamed if d.failure_class == "change_regression" and d.node != named}
    assert len(changed) >= 3, pool.logs()
    assert by_node(streamed) == by_node(offline), diff(streamed, offline)
