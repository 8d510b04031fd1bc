"""``breakfix nico poll`` as an operator runs it: a config file, the JWT in the environment, the real
Tansu broker; a tenant's release on the NICo stand-in becomes one tenant.report on the events topic."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.events import TenantReport
from schemas.parse import parse_event
from schemas.signing import Keyring
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.keys import create_key
from streams.signed_input import SignedInput
from tests.fixtures.nico import REPAIR_TOKEN, start

pytestmark = pytest.mark.integration
BREAKFIX = [sys.executable, "-c", "from breakfix.cli.main import main; main()"]
M = "fm100gpu07"
TENANT = "6f1c0f0e-3b5d-4c55-9a0e-2d1f6b0e9c11"


def config(path: Path, url: str, grpc: str, tenant: str) -> Path:
    path.write_text(
        f"url: {url}\norg: acme\ngrpc: {grpc}\ngrpc_tls: false\nrepair_tenant:\n  tenant_id: {tenant}\n"
        "  vpc_id: 5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3\n"
        "  vpc_prefix_id: 000bc42b-f946-472e-83d4-ddf7e365e148\n"
        "  operating_system_id: eaeb86ee-c435-444e-9e01-8346f67f194b\n"
    )
    return path


def cli(
    *args: str, token: str | None = REPAIR_TOKEN, prefix: str = "", keys: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BREAKFIX_TOPIC_PREFIX": prefix}
    if keys is not None:
        env["BREAKFIX_KEYS_DIR"] = str(keys)
    env.pop("BREAKFIX_NICO_TOKEN", None)
    if token:
        env["BREAKFIX_NICO_TOKEN"] = token
    return subprocess.run([*BREAKFIX, *args], capture_output=True, text=True, env=env, timeout=120)


async def topics(broker: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(prefix + "breakfix.events", 2, 1), NewTopic(prefix + "breakfix.deadletter", 1, 1)]
        )
    finally:
        await admin.close()


async def read(broker: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker, auto_offset_reset="earliest")
    await consumer.start()
    out: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            while not out:
                for msgs in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(m.value for m in msgs if m.value)
    finally:
        await consumer.stop()
    return out


def test_poll_once_publishes_the_released_machine_as_a_tenant_report(
    tansu: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    prefix = f"nico{unique}."
    asyncio.run(topics(tansu.url, prefix))
    keys = tmp_path / "keys"
    create_key(keys, "controller")
    for rig in start():
        rig.fake.add_machine(M)
        rig.fake.place(M, rig.tenant)
        rig.tenant_release(M, "Network", "DPU link flaps")
        cfg = config(tmp_path / "nico.yaml", rig.fake.url, rig.fake.grpc_target, rig.repair.tenant_id)
        done = cli(
            "nico", "poll", "--nico", str(cfg), "--broker", tansu.url, "--once", prefix=prefix, keys=keys
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert f"repair work: {M} (NETWORK)" in done.stdout
    (raw,) = asyncio.run(read(tansu.url, prefix + "breakfix.events"))
    event = json.loads(raw)
    assert (event["type"], event["node"], event["data"]["category"]) == ("tenant.report", M, "NETWORK")
    # The node stage's own gate accepts it: sealed by the controller key, verified over the bytes sent.
    gate = SignedInput(Keyring.parse((keys / "trusted.keys").read_text()))
    parsed = parse_event(raw)
    assert isinstance(parsed, TenantReport) and event["seal"]["signer"] == "controller"
    assert gate.event(parsed, raw, "test") is None
    tampered = raw.replace(b"NETWORK", b"HARDWARE")
    forged = parse_event(tampered)
    assert isinstance(forged, TenantReport) and gate.event(forged, tampered, "test") is not None


def test_a_missing_token_or_a_bad_key_is_named(tmp_path: Path) -> None:
    cfg = config(tmp_path / "nico.yaml", "http://127.0.0.1:9", "127.0.0.1:9", "not-a-uuid")
    bad_id = cli("nico", "poll", "--nico", str(cfg), "--once")
    assert bad_id.returncode != 0 and "repair_tenant.tenant_id" in bad_id.stderr
    cfg = config(tmp_path / "nico.yaml", "http://127.0.0.1:9", "127.0.0.1:9", TENANT)
    no_token = cli("nico", "poll", "--nico", str(cfg), "--once", token=None)
    assert no_token.returncode != 0 and "BREAKFIX_NICO_TOKEN" in no_token.stdout + no_token.stderr
    no_broker = cli("nico", "poll", "--nico", str(cfg), "--once", "--broker", "127.0.0.1:9")
    assert no_broker.returncode == 1 and "--broker HOST:PORT" in no_broker.stderr
    cfg.write_text(cfg.read_text().replace("org: acme", "organisation: acme"))
    bad = cli("nico", "poll", "--nico", str(cfg), "--once")
    assert bad.returncode != 0 and "organisation" in bad.stdout + bad.stderr


def test_an_unreachable_nico_fails_the_poll_and_says_what_to_check(
    tansu: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    prefix = f"nicodown{unique}."
    asyncio.run(topics(tansu.url, prefix))
    cfg = config(tmp_path / "nico.yaml", "http://127.0.0.1:9", "127.0.0.1:9", TENANT)
    keys = tmp_path / "keys"
    unsigned = cli(
        "nico", "poll", "--nico", str(cfg), "--once", "--broker", tansu.url, prefix=prefix, keys=keys
    )
    assert unsigned.returncode != 0 and "breakfix keys create --role controller" in unsigned.stderr
    create_key(keys, "controller")
    done = cli("nico", "poll", "--nico", str(cfg), "--once", "--broker", tansu.url, prefix=prefix, keys=keys)
    said = " ".join(done.stdout.split())  # the console wraps long lines
    assert done.returncode == 1 and "NICo unreachable" in said and "check `url`/`grpc` and the token" in said
