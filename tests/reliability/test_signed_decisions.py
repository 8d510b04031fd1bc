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
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.decision import Mode
from schemas.recording import dumps
from schemas.signing import Signer
from streams.actuator_stage import ActuatorStage
from streams.keys import create_all, create_key
from streams.settings import StreamSettings
from tests.integration.test_actuator_stage import DECISIONS, Stage, collect, decision, finished, publish
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
