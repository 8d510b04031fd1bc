"""Forged lifecycle inputs sent to a real node-stage + guard worker over the real Tansu broker.

Tenant reports, repair status, action results and decisions change a node's lifecycle without the
guard's say, so the node stage accepts them only from their signed origin (streams/signed_input.py).
Each forgery here (and two forged emergency-mode levers sent to the guard) is a dead letter with its
reason and no decision cites it; the same tenant report
signed by the API's key (sent with `breakfix produce --sign-as api`) still runs end to end into a
guard-signed decision. The real guard also orders levers by log position (a back-dated "off" written
after the "on" wins) and, when a lever lifts, issues its in-flight decision again with a new stamp.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.control import ControlKind, ControlMessage
from schemas.signing import Signer, verify
from streams.keys import load_keyring, load_signer
from streams.settings import StreamSettings
from tests.integration.test_stream_kafka import Workers, _event, _read
from tests.integration.test_stream_kafka import pool as pool  # the worker fixture
from tests.integration.test_stream_kafka import settings as settings  # the broker fixture

REPORT = {"instance_id": "i-1", "category": "HARDWARE", "summary": "GPU 3 fell off the bus", "details": ""}
T = "2025-01-01T01:00:05Z"


def test_forged_lifecycle_inputs_are_dead_letters_and_a_signed_tenant_report_acts(
    settings: StreamSettings, pool: Workers, tmp_path: Path
) -> None:
    keys = {role: load_signer(settings, role) for role in ("api", "agent", "actuators", "guard")}
    now = time.time()

    def signed(signer: Signer, doc: dict[str, Any]) -> bytes:
        return orjson.dumps(signer.seal(doc, now))

    inv = _event(0, "n1", "node.inventory", {"pool": "p", "rack": "r", "sku": "H100", "gpus": 8})
    result = {
        "decision_id": "d-x",
        "action": "validate",
        "step": "validate",
        "status": "succeeded",
        "validation": "passed",
    }
    rogue = Signer.generate(keys["api"].key_id, "api")  # claims the API's key id, holds another key
    forged_events = [
        orjson.dumps(_event(1, "n1", "tenant.report", REPORT, t=T)),
        signed(keys["agent"], _event(2, "n1", "tenant.report", REPORT, t=T)),
        signed(rogue, _event(3, "n1", "repair.status", {"repair_status": "Completed"}, t=T)),
        orjson.dumps(_event(4, "n1", "action.result", result, t=T)),
    ]  # fmt: skip
    forged_decision = {
        "id": "d-forged", "time": T, "node": "n1", "from_state": "Quarantined", "to_state": "Healthy",
        "trigger": "validation_passed", "failure_class": "gpu_hardware", "confidence": 1.0, "action": "none",
        "mode": "auto", "executable": True, "reasons": [], "evidence": [], "policy_version": "x",
    }  # fmt: skip
    emergency = ControlMessage(
        id="c-1",
        time=datetime.now(UTC),
        kind=ControlKind.EMERGENCY,
        scope="global",
        value={"on": True},
        actor="x",
    ).model_dump(mode="json")
    forged_levers = [orjson.dumps(emergency), signed(keys["guard"], emergency)]  # unsigned; not the API's
    good = tmp_path / "report.jsonl"  # sent by `breakfix produce --sign-as api`, as an integration would
    good.write_bytes(orjson.dumps(_event(5, "n1", "tenant.report", REPORT, t="2025-01-01T01:00:10Z")) + b"\n")

    async def produce() -> None:
        p = AIOKafkaProducer(bootstrap_servers=settings.broker)
        await p.start()
        try:
            events = settings.topic("breakfix.events")
            await p.send_and_wait(events, orjson.dumps(inv), key=b"n1")
            for value in forged_events:
                await p.send_and_wait(events, value, key=b"n1")
            await p.send_and_wait(
                settings.topic("breakfix.decisions"), orjson.dumps(forged_decision), key=b"n1"
            )
            for value in forged_levers:
                await p.send_and_wait(settings.topic("breakfix.control"), value, key=b"emergency:global")
        finally:
            await p.stop()

    pool.start(0)
    asyncio.run(produce())
    cli = [str(Path(sys.executable).with_name("breakfix")), "produce", str(good), "--sign-as", "api"]
    env = {**os.environ, "BREAKFIX_BROKER": settings.broker, "BREAKFIX_TOPIC_PREFIX": settings.topic_prefix}
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    letters = asyncio.run(_read(settings, "breakfix.deadletter", lambda v: len(v) >= 7, 60.0, 1.0))
    reasons = sorted(orjson.loads(v)["reason"] for v in letters)
    assert reasons == sorted(["bad_signature", "wrong_signer", "wrong_signer"] + ["unsigned"] * 4), (
        pool.logs()
    )
    raw = asyncio.run(_read(settings, "breakfix.decisions", lambda v: len(v) >= 2, 30.0, 2.0))
    mine = [orjson.loads(v) for v in raw if orjson.loads(v)["id"] != "d-forged"]
    ring = load_keyring(settings)
    assert mine and all(verify(d, ring, {"guard"}, time.time(), None).ok for d in mine), "guard-signed"
    cited = {e for d in mine for e in d["evidence"]}
    assert "e5" in cited, "the API-signed tenant report must still act"
    assert not cited & {"e1", "e2", "e3", "e4"}, "a forged lifecycle input was acted on"


def test_the_real_guard_orders_levers_by_log_position_and_reissues_on_a_lift(
    settings: StreamSettings, pool: Workers
) -> None:
    """A kill switch turned off by a back-dated lever written after the "on" is off for the real guard
    (a tenant report then yields an executable decision); a kill switch turned on and off again after
    that decision makes the guard issue it again, signed with a new stamp, as ``<id>:reissued:<lever>``."""
    api = load_signer(settings, "api")

    def lever(n: int, on: bool, claimed_s: float) -> bytes:
        m = ControlMessage(
            id=f"ks-{n}", time=datetime.fromtimestamp(time.time() + claimed_s, UTC),
            kind=ControlKind.KILLSWITCH, scope="global", value={"on": on}, actor="ann",
        )  # fmt: skip
        return orjson.dumps(api.seal(m.model_dump(mode="json"), time.time()))

    auto = ControlMessage(
        id="mode-1", time=datetime.now(UTC), kind=ControlKind.MODE, scope="class:tenant_report",
        value={"mode": "auto"}, actor="ann",
    )  # fmt: skip

    def inventory(i: int) -> tuple[bytes, bytes]:
        placement = {"pool": "p", "rack": f"r{i}", "sku": "H100", "gpus": 8}
        return f"n{i}".encode(), orjson.dumps(_event(100 + i, f"n{i}", "node.inventory", placement))

    fleet = [inventory(i) for i in range(1, 11)]  # quarantining one keeps the pool above its headroom
    report = api.seal(_event(1, "n1", "tenant.report", REPORT, t=T), time.time())

    async def send(topic: str, *items: tuple[bytes, bytes]) -> None:
        p = AIOKafkaProducer(bootstrap_servers=settings.broker)
        await p.start()
        try:
            for key, value in items:
                await p.send_and_wait(settings.topic(topic), value, key=key)
        finally:
            await p.stop()

    ks = b"killswitch:global"
    pool.start(0)
    mode = (auto.key.encode(), orjson.dumps(api.seal(auto.model_dump(mode="json"), time.time())))
    asyncio.run(send("breakfix.control", mode, (ks, lever(1, True, 0)), (ks, lever(2, False, -86_400))))
    asyncio.run(send("breakfix.events", *fleet))
    time.sleep(2.0)  # the fleet registered with the guard before the report
    asyncio.run(send("breakfix.events", (b"n1", orjson.dumps(report))))
    raw = asyncio.run(_read(settings, "breakfix.decisions", lambda v: len(v) >= 1, 60.0, 2.0))
    [first] = [orjson.loads(v) for v in raw]
    assert first["executable"], {
        k: first.get(k) for k in ("mode", "guard_failed", "reasons", "held", "action")
    }
    asyncio.run(send("breakfix.control", (ks, lever(3, True, 0)), (ks, lever(4, False, -86_400))))
    raw = asyncio.run(_read(settings, "breakfix.decisions", lambda v: len(v) >= 2, 60.0, 2.0))
    again = orjson.loads(raw[-1])
    assert again["id"] == f"{first['id']}:reissued:ks-4", pool.logs()
    assert again["seal"]["issued"] > first["seal"]["issued"] and again["node"] == "n1"
    assert verify(again, load_keyring(settings), {"guard"}, time.time(), None).ok
