"""Forged decisions sent to the real actuator stage over the real Tansu broker: each refused with its
own dead-letter reason, nothing executed; a signed guard decision still runs end to end.

The forgeries are the ones a security review tries from the cluster network: an unsigned executable
decision, one signed by another component's real key, by an unknown key, by a revoked guard key, a
signed shadow decision flipped to executable, a week-old and a future-dated one, a decision from a
replaced guard's older epoch, and a replay of a decision that already ran.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.control import ControlKind, ControlMessage
from schemas.decision import REISSUED, Mode
from schemas.recording import dumps
from schemas.signing import Signer
from streams.actuation.stage import ActuatorStage
from streams.keys import create_all, create_key, load_signer
from streams.settings import StreamSettings
from tests.integration.test_actuator_stage import (
    CONTROL,
    DECISIONS,
    Stage,
    collect,
    decision,
    finished,
    publish,
)
from tests.integration.test_actuator_stage import settings as settings  # the broker fixture

pytestmark = pytest.mark.integration
DEADLETTER = "breakfix.deadletter"


def seal(signer: Signer, doc: Any, issued: float | None = None, epoch: int = 5) -> bytes:
    body = doc.model_dump(mode="json") if hasattr(doc, "model_dump") else doc
    return orjson.dumps(signer.seal(body, time.time() if issued is None else issued, epoch))


async def dead_letters(settings: StreamSettings, count: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(settings.topic(DEADLETTER), 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    try:
        while len(out) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out.extend(orjson.loads(r.value) for r in records)
        return out
    finally:
        await consumer.stop()


def test_forged_replayed_stale_and_fenced_decisions_never_act(
    settings: StreamSettings, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    create_key(keys, "guard", "guard-old")  # rotated out, then revoked
    signers = {s.role: s for s in create_all(keys)}
    guard, old = signers["guard"], Signer.parse((keys / "guard.guard-old.key").read_text())
    cfg = settings.model_copy(update={"keys_dir": keys, "revoked_keys": "guard-old"})
    rogue = Signer.generate(guard.key_id, "guard")  # claims the guard's key id, holds another key
    now = time.time()
    shadow = orjson.loads(seal(guard, decision("gpu-f4", mode=Mode.SHADOW, executable=False)))
    forged = {
        "unsigned": dumps(decision("gpu-f1")),
        "wrong_signer": seal(signers["actuators"], decision("gpu-f2")),
        "bad_signature": orjson.dumps({**shadow, "executable": True, "mode": "auto"}),
        "unknown_key": seal(Signer.generate("guard-x", "guard"), decision("gpu-f3")),
        "revoked_key": seal(old, decision("gpu-f5")),
        "expired": seal(guard, decision("gpu-f6"), issued=now - 7 * 86_400),
        "future_dated": seal(guard, decision("gpu-f7"), issued=now + 3_600),
    }
    forged["bad_signature_rogue"] = seal(rogue, decision("gpu-f8"))
    first = seal(guard, decision("gpu-ok1"), epoch=5)

    async def scenario() -> tuple[ActuatorStage, list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
        stage = Stage(cfg, tmp_path / "state")
        async with stage as running:
            await publish(cfg, DECISIONS, [(b"x", raw) for raw in forged.values()])
            await publish(cfg, DECISIONS, [(b"gpu-ok1", first)])
            await collect(cfg, finished("d-gpu-ok1-0"))
            late = [first, seal(guard, decision("gpu-f9"), epoch=4)]  # a replay; a replaced guard's
            await publish(cfg, DECISIONS, [(b"gpu-ok1", raw) for raw in late])
            await publish(cfg, DECISIONS, [(b"gpu-ok1", seal(guard, decision("gpu-ok2"), epoch=6))])
            events = await collect(cfg, finished("d-gpu-ok2-0"))
            letters = await dead_letters(cfg, len(forged) + 2)
        return running, events, letters, stage.mutations()

    stage, events, letters, mutations = asyncio.run(scenario())
    assert {e["node"] for e in events} == {"gpu-ok1", "gpu-ok2"}, "only the guard's signed decisions act"
    assert {m["node"] for m in mutations} == {"gpu-ok1", "gpu-ok2"}
    expected = {
        "unsigned": 1, "wrong_signer": 1, "bad_signature": 2, "unknown_key": 1, "revoked_key": 1,
        "expired": 1, "future_dated": 1, "replayed": 1, "fenced": 1,
    }  # fmt: skip
    assert stage.stats.refused == expected
    assert sorted(letter["reason"] for letter in letters) == sorted(
        r for r, n in expected.items() for _ in range(n)
    )
    assert all(e["seal"]["signer"] == "actuators" for e in events), "the stage signs the results it emits"


def test_a_forged_lever_never_lifts_a_kill_switch_the_api_set(
    settings: StreamSettings, tmp_path: Path
) -> None:
    """The kill switch is on (signed by the API); forged "off" messages (unsigned, signed by a real key
    of another role, future-dated) leave the run paused with nothing touched; the API's own "off"
    resumes it."""
    keys = {role: load_signer(settings, role) for role in ("api", "guard")}

    def lever(
        on: bool, n: int, signer: Signer | None = None, issued: float | None = None
    ) -> tuple[bytes, bytes]:
        m = ControlMessage(
            id=f"ks-{n}", time=datetime.now(UTC), kind=ControlKind.KILLSWITCH, scope="global",
            value={"on": on}, actor="ann",
        )  # fmt: skip
        body = m.model_dump(mode="json")
        raw = orjson.dumps(signer.seal(body, issued or time.time())) if signer else orjson.dumps(body)
        return m.key.encode(), raw

    d = decision("gpu-l1")

    async def scenario() -> tuple[ActuatorStage, list[dict[str, Any]], list[dict[str, Any]]]:
        await publish(settings, CONTROL, [lever(True, 0, keys["api"])])
        stage = Stage(settings, tmp_path / "state")
        async with stage as running:
            await publish(settings, DECISIONS, [(b"gpu-l1", seal(keys["guard"], d))])
            while running.stats.verdicts.get("paused", 0) < 1:
                await asyncio.sleep(0.1)
            forged = [
                lever(False, 1),
                lever(False, 2, keys["guard"]),
                lever(False, 3, keys["api"], time.time() + 3600),
            ]
            await publish(settings, CONTROL, forged)
            while sum(n for r, n in running.stats.refused.items() if r.startswith("lever:")) < 3:
                await asyncio.sleep(0.1)
            before = stage.mutations()
            await publish(settings, CONTROL, [lever(False, 4, keys["api"])])
            events = await collect(settings, finished(d.id))
        return running, before, events

    stage, before, events = asyncio.run(scenario())
    assert before == [], "a forged lever lifted the kill switch"
    assert {r: n for r, n in stage.stats.refused.items() if r.startswith("lever:")} == {
        "lever:unsigned": 1, "lever:wrong_signer": 1, "lever:future_dated": 1,
    }  # fmt: skip
    assert next(e for e in events if e["data"]["step"] == "workflow")["data"]["status"] == "succeeded"


def test_a_paused_run_resumes_only_under_a_fresh_guard_stamp(
    settings: StreamSettings, tmp_path: Path
) -> None:
    """A run a kill switch paused whose guard stamp grew older than the freshness bound does not resume
    when the switch lifts (a back-dated "off", applied in log order); it resumes, once, when the guard
    issues it again with a new stamp (``<id>:reissued:<lever id>``), under the original's workflow.
    A re-issue replayed is refused; a re-issue of a run not paused here does nothing."""
    cfg = settings.model_copy(update={"decision_max_age_s": 3.0})
    keys = {role: load_signer(cfg, role) for role in ("api", "guard")}

    def lever(on: bool, n: int, claimed: timedelta = timedelta(0)) -> tuple[bytes, bytes]:
        m = ControlMessage(
            id=f"ks-{n}", time=datetime.now(UTC) + claimed, kind=ControlKind.KILLSWITCH, scope="global",
            value={"on": on}, actor="ann",
        )  # fmt: skip
        return m.key.encode(), orjson.dumps(keys["api"].seal(m.model_dump(mode="json"), time.time()))

    d = decision("gpu-r1")
    again = d.model_copy(update={"id": f"{d.id}{REISSUED}ks-1"})
    stray = decision("gpu-r2").model_copy(update={"id": f"d-gpu-r2-0{REISSUED}ks-1"})

    async def scenario() -> tuple[ActuatorStage, list[Any], list[dict[str, Any]]]:
        await publish(cfg, CONTROL, [lever(True, 0)])
        stage = Stage(cfg, tmp_path / "state")
        async with stage as running:
            await publish(cfg, DECISIONS, [(b"gpu-r1", seal(keys["guard"], d))])
            while running.stats.verdicts.get("paused", 0) < 1:
                await asyncio.sleep(0.1)
            await asyncio.sleep(cfg.decision_max_age_s + 0.5)
            await publish(cfg, CONTROL, [lever(False, 1, claimed=-timedelta(days=1))])
            while running.control.killswitch_on(None):
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            before = stage.mutations()
            assert running.stats.decisions == 1, "a stale paused run resumed on the lift"
            await publish(cfg, DECISIONS, [(b"gpu-r1", seal(keys["guard"], again, epoch=6))])
            events = await collect(cfg, finished(d.id))
            await publish(cfg, DECISIONS, [(b"gpu-r1", seal(keys["guard"], again, epoch=6))])
            await publish(cfg, DECISIONS, [(b"gpu-r2", seal(keys["guard"], stray, epoch=6))])
            while running.stats.verdicts.get("reissue_unused", 0) < 1:
                await asyncio.sleep(0.1)
        return running, before, events

    stage, before, events = asyncio.run(scenario())
    assert before == [], "nothing ran before the guard issued the paused run again"
    workflows = [e for e in events if e["data"]["step"] == "workflow"]
    assert [(e["data"]["decision_id"], e["data"]["status"]) for e in workflows] == [(d.id, "succeeded")]
    assert stage.stats.refused == {"replayed": 1}
    assert stage.stats.verdicts.get("reissue_unused") == 1
