"""The actuator stage on the real Tansu broker: decisions topic in, simulated actuators, action.result
events out on the events topic; replayed/stale/shadow/recommend decisions never act; the kill switch
pauses without mutating; a SIGKILLed stage resumes its run without repeating a completed step."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from actuators.simulated import SimFault
from breakfix.demo.actuation import FleetClock, simulated_handler
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision, GuardCheck, Mode
from schemas.topics import TOPIC_BY_NAME
from streams.actuation.stage import ActuatorStage
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.settings import StreamSettings
from tests.signing import sealed

pytestmark = pytest.mark.integration
EVENTS, DECISIONS, CONTROL = "breakfix.events", "breakfix.decisions", "breakfix.control"
XID_STEPS = ["cordon", "drain", "gpu-reset", "validate", "uncordon"]


def decision(node: str, n: int = 0, **over: Any) -> Decision:
    fields: dict[str, Any] = {
        "id": f"d-{node}-{n}",
        "time": datetime.now(UTC),
        "node": node,
        "from_state": "Suspect",
        "to_state": "Quarantined",
        "trigger": "act_threshold",
        "failure_class": "gpu_hardware",
        "confidence": 0.95,
        "action": ActionKind.GPU_RESET,
        "mode": Mode.AUTO,
        "executable": True,
        "reasons": ["Xid 79 on GPU 3"],
        "evidence": ["e1"],
        "guard": [
            GuardCheck(name="headroom", passed=True),
            GuardCheck(name="exclusion", passed=True, figures={"pool": "pool-a"}),
        ],
        "policy_version": "test",
    }
    return Decision(**{**fields, **over})


@pytest.fixture
def settings(tansu: EmbeddedBroker, unique: str) -> StreamSettings:
    s = StreamSettings(
        broker=tansu.url,
        app_id=f"bf-{unique}",
        topic_prefix=f"a{unique}.",
        session_timeout_s=4,
        heartbeat_s=0.5,
    )
    asyncio.run(create_topics(s))
    return s


async def publish(settings: StreamSettings, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(settings.topic(topic), value, key=key)
    finally:
        await producer.stop()


async def collect(
    settings: StreamSettings, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 40.0
) -> list[dict[str, Any]]:
    """Every event on the events topic (with its Kafka key as ``_key``) until ``until`` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False)
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(settings.topic(EVENTS), p) for p in range(TOPIC_BY_NAME[EVENTS].partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while not until(events) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                events.extend({**orjson.loads(r.value), "_key": r.key.decode()} for r in records)
        return events
    finally:
        await consumer.stop()


def finished(*ids: str) -> Callable[[list[dict[str, Any]]], bool]:
    def check(events: list[dict[str, Any]]) -> bool:
        done = {e["data"]["decision_id"] for e in events if e["data"]["step"] == "workflow"}
        return set(ids) <= done

    return check


class Stage:
    """An in-process stage on a simulated fleet, stopped at the end of the ``async with`` block."""

    def __init__(self, settings: StreamSettings, state: Path, faults: tuple[SimFault, ...] = ()) -> None:
        clock = FleetClock(time.time(), time.time(), speed=500.0)
        handler = simulated_handler(list(faults), state, clock)
        self.stage = ActuatorStage(settings, handler, paused_dir=state / "paused")
        self.ledger = state / "fleet-ledger.jsonl"

    async def __aenter__(self) -> ActuatorStage:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.stage.run(self.stop))
        await asyncio.wait_for(self.stage.ready.wait(), 30)
        return self.stage

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 60)

    def mutations(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines() if line]


def test_executable_decision_runs_its_playbook_and_reports_each_step(
    settings: StreamSettings, tmp_path: Path
) -> None:
    rma = SimFault("f1", "gpu-02", start=time.time() - 60, repair="rma")
    ok, broken = decision("gpu-01"), decision("gpu-02")

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        stage = Stage(settings, tmp_path, (rma,))
        async with stage:
            await publish(settings, DECISIONS, [(d.node.encode(), sealed(d)) for d in (ok, broken)])
            events = await collect(settings, finished(ok.id, broken.id))
        return events, stage.mutations()

    events, mutations = asyncio.run(scenario())
    mine = [e for e in events if e["data"]["decision_id"] == ok.id]
    assert all(e["type"] == "action.result" and e["_key"] == "gpu-01" for e in mine)
    assert [e["data"]["step"] for e in mine] == ["started", *XID_STEPS, "workflow"]
    assert mine[0]["data"]["status"] == "in_progress"  # the run started: the node goes Repairing
    assert all(e["data"]["status"] == "succeeded" for e in mine[1:])
    assert next(e for e in mine if e["data"]["step"] == "validate")["data"]["validation"] == "passed"
    # The RMA-class fault survives a GPU reset: validation fails, the workflow escalates, no uncordon.
    theirs = {e["data"]["step"]: e["data"] for e in events if e["data"]["decision_id"] == broken.id}
    assert theirs["validate"]["status"] == "failed" and theirs["validate"]["validation"] == "failed"
    assert theirs["workflow"]["status"] == "failed" and "escalated" in theirs["workflow"]["detail"]
    assert "uncordon" not in theirs
    assert [m["operation"] for m in mutations if m["node"] == "gpu-01"] == [
        "cordon",
        "drain",
        "gpu_reset",
        "uncordon",
    ]


def test_replayed_stale_shadow_and_recommend_decisions_never_act(
    settings: StreamSettings, tmp_path: Path
) -> None:
    refused = [
        decision("gpu-11", replay=True),
        decision("gpu-12", stale=True),
        decision("gpu-13", mode=Mode.SHADOW, executable=False),
        decision("gpu-14", mode=Mode.RECOMMEND, executable=False),
    ]
    sentinel = decision("gpu-15")

    async def scenario() -> tuple[ActuatorStage, list[dict[str, Any]], list[dict[str, Any]]]:
        stage = Stage(settings, tmp_path)
        async with stage as running:
            await publish(settings, DECISIONS, [(d.node.encode(), sealed(d)) for d in refused])
            await publish(settings, DECISIONS, [(b"gpu-15", sealed(sentinel))])
            events = await collect(settings, finished(sentinel.id))
            while running.stats.decisions < 5:
                await asyncio.sleep(0.1)
        return running, events, stage.mutations()

    stage, events, mutations = asyncio.run(scenario())
    assert finished(sentinel.id)(events), "the executable decision must run, or this test proves nothing"
    assert {e["node"] for e in events} == {"gpu-15"}
    assert {m["node"] for m in mutations} == {"gpu-15"}
    assert stage.stats.verdicts.get("not_executable") == 4


def test_kill_switch_pauses_without_mutating_and_resumes_when_lifted(
    settings: StreamSettings, tmp_path: Path
) -> None:
    def lever(on: bool) -> tuple[bytes, bytes]:
        m = ControlMessage(
            id=f"ks-{on}", time=datetime.now(UTC), kind=ControlKind.KILLSWITCH, scope="pool:pool-a",
            value={"on": on}, actor="ann",
        )  # fmt: skip
        return m.key.encode(), sealed(m, role="api")  # the API, the levers' one writer

    d = decision("gpu-21")

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        await publish(settings, CONTROL, [lever(True)])
        stage = Stage(settings, tmp_path)
        async with stage as running:
            await publish(settings, DECISIONS, [(b"gpu-21", sealed(d))])
            paused = await collect(settings, lambda evs: any(e["data"]["status"] == "refused" for e in evs))
            while running.stats.verdicts.get("paused", 0) < 1:
                await asyncio.sleep(0.1)
            before = stage.mutations()
            await publish(settings, CONTROL, [lever(False)])
            resumed = await collect(settings, finished(d.id))
        return paused, before, resumed

    paused, before, resumed = asyncio.run(scenario())
    refusal = next(e["data"] for e in paused if e["data"]["status"] == "refused")
    assert refusal["step"] == "cordon" and "kill switch" in refusal["detail"]
    assert before == [], "nothing may be mutated while the kill switch is engaged"
    assert finished(d.id)(resumed)
    assert next(e for e in resumed if e["data"]["step"] == "workflow")["data"]["status"] == "succeeded"


def test_a_paused_run_survives_a_restart_and_resumes_when_the_lever_lifted_meanwhile(
    settings: StreamSettings, tmp_path: Path
) -> None:
    def lever(on: bool) -> tuple[bytes, bytes]:
        m = ControlMessage(
            id=f"ks-{on}", time=datetime.now(UTC), kind=ControlKind.KILLSWITCH, scope="global",
            value={"on": on}, actor="ann",
        )  # fmt: skip
        return m.key.encode(), sealed(m, role="api")  # the API, the levers' one writer

    d = decision("gpu-41")

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        await publish(settings, CONTROL, [lever(True)])
        first = Stage(settings, tmp_path)
        async with first as running:
            await publish(settings, DECISIONS, [(b"gpu-41", sealed(d))])
            while running.stats.verdicts.get("paused", 0) < 1:
                await asyncio.sleep(0.1)
        assert first.mutations() == []
        await publish(settings, CONTROL, [lever(False)])  # lifted while no stage runs
        second = Stage(settings, tmp_path)
        async with second:
            events = await collect(settings, finished(d.id))
        return events, second.mutations()

    events, mutations = asyncio.run(scenario())
    assert next(e for e in events if e["data"]["step"] == "workflow")["data"]["status"] == "succeeded"
    assert [m["operation"] for m in mutations] == ["cordon", "drain", "gpu_reset", "uncordon"]


def start_stage_process(settings: StreamSettings, state: Path, log: Path) -> subprocess.Popen[bytes]:
    now = str(time.time())
    argv = [str(Path(sys.executable).parent / "breakfix"), "run", "--role", "actuators", "--simulate"]
    argv += ["--broker", settings.broker, "--state-dir", str(state), "--speed", "40", "--origin", now]
    argv += ["--wall-origin", now]
    env = {**os.environ, "BREAKFIX_TOPIC_PREFIX": settings.topic_prefix, "BREAKFIX_APP_ID": settings.app_id}
    env |= {"BREAKFIX_SESSION_TIMEOUT_S": "4", "BREAKFIX_HEARTBEAT_S": "0.5"}
    return subprocess.Popen(
        argv, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


@pytest.mark.slow
def test_sigkill_mid_workflow_resumes_without_repeating_a_completed_step(
    settings: StreamSettings, tmp_path: Path
) -> None:
    state, ledger, log = tmp_path / "state", tmp_path / "state" / "fleet-ledger.jsonl", tmp_path / "stage.log"
    d = decision("gpu-31")
    asyncio.run(publish(settings, DECISIONS, [(b"gpu-31", sealed(d))]))
    first = start_stage_process(settings, state, log)
    try:
        deadline = time.monotonic() + 60
        while not (ledger.exists() and '"drain"' in ledger.read_text()):
            assert time.monotonic() < deadline and first.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_after = [json.loads(line)["operation"] for line in ledger.read_text().splitlines()]
        assert "uncordon" not in killed_after, "killed too late to prove a resume"
        second = start_stage_process(settings, state, log)
        try:
            events = asyncio.run(collect(settings, finished(d.id), timeout_s=90))
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert finished(d.id)(events), log.read_text()[-3000:]
    workflow = next(e["data"] for e in events if e["data"]["step"] == "workflow")
    assert workflow["status"] == "succeeded"
    keys = [json.loads(line)["key"] for line in ledger.read_text().splitlines()]
    assert len(keys) == len(set(keys)), f"a mutating step ran twice: {keys}"
    assert [k.split("/")[-1] for k in keys] == ["cordon", "drain", "gpu-reset", "uncordon"]


def test_a_run_that_raised_is_not_committed_as_done_but_resumed(
    settings: StreamSettings, tmp_path: Path
) -> None:
    """The broker refuses the result of the drain step (the run raises with the node cordoned and the
    journal "running"): the stage keeps the decision and handles it again, the journal resumes the run,
    and the node ends uncordoned; a restarted stage would find it in ``paused/retry`` first."""
    clock = FleetClock(time.time(), time.time(), speed=500.0)
    make = simulated_handler([], tmp_path, clock)
    refused: list[str] = []

    def make_flaky(emit: Any, control: Any) -> Any:
        def once(event: dict[str, Any]) -> None:
            if event["data"]["step"] == "drain" and not refused:
                refused.append(event["id"])
                raise ConnectionError("broker unreachable (test)")
            emit(event)

        return make(once, control)

    d = decision("gpu-31")
    stage = ActuatorStage(settings, make_flaky, paused_dir=tmp_path / "paused", retry_s=0.5)

    async def scenario() -> list[dict[str, Any]]:
        stop = asyncio.Event()
        task = asyncio.create_task(stage.run(stop))
        await asyncio.wait_for(stage.ready.wait(), 30)
        try:
            await publish(settings, DECISIONS, [(d.node.encode(), sealed(d))])
            while not refused:
                await asyncio.sleep(0.05)
            assert list((tmp_path / "paused" / "retry").glob("*.json")), "kept before its offset is committed"
            return await collect(settings, finished(d.id))
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)

    events = asyncio.run(scenario())
    mine = [e["data"] for e in events if e["data"]["decision_id"] == d.id]
    assert refused and stage.stats.verdicts.get("error") == 1
    assert mine[-1]["step"] == "workflow" and mine[-1]["status"] == "succeeded", mine[-1]
    ops = [
        json.loads(line)["operation"] for line in (tmp_path / "fleet-ledger.jsonl").read_text().splitlines()
    ]
    assert ops[0] == "cordon" and ops[-1] == "uncordon" and ops.count("cordon") == 1, ops
    assert not list((tmp_path / "paused" / "retry").glob("*.json")), "done: no longer kept"
