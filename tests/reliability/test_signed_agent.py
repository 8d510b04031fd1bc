"""Forged commands sent to a real `breakfix node-agent` process over the real Tansu broker, and forged
answers sent to the controller's transport: none acts, none counts.

The agent: an unsigned reboot, one signed by the guard's real key (not the actuator stage's), one
whose signature is another key's under the actuator stage's key id, a stale one and a future-dated one
are dead letters with their reasons and no answer; then a signed reboot runs once, and the same command
redelivered to a restarted agent is answered from its on-disk journal, not run again. The controller:
an unsigned "passed" diagnosis, one signed by a non-agent key, one by an agent key scoped to other
nodes, and one naming another node are all ignored; only the real agent's answer counts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from actuators.base import TemporaryError
from actuators.nodeagent.kafka_transport import KafkaCommandTransport
from schemas.actions import ActionRequest
from schemas.signing import Keyring, Signer
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.keys import load_keyring, load_signer, trust_path
from streams.settings import StreamSettings

pytestmark = pytest.mark.integration
BREAKFIX = Path(sys.executable).with_name("breakfix")


def command(rid: str, action: str = "reboot", node: str = "n1") -> dict[str, Any]:
    req = ActionRequest(
        id=rid, decision_id=rid.split("/")[0], node=node, action=action, playbook="p", playbook_version="1",
        step="s", time=datetime.now(UTC),
    )  # fmt: skip
    return req.model_dump(mode="json")


async def make_topics(broker: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    names = (("breakfix.commands", 12), ("breakfix.events", 12), ("breakfix.deadletter", 1))
    await admin.create_topics(
        [NewTopic(prefix + t, num_partitions=n, replication_factor=1) for t, n in names]
    )
    await admin.close()


async def send(broker: str, topic: str, values: list[bytes], key: bytes = b"n1") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    for v in values:
        await producer.send_and_wait(topic, v, key=key)
    await producer.stop()


async def read_all(broker: str, topic: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = (await consumer.topics(), consumer.partitions_for_topic(topic) or set())[1]
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out.extend(orjson.loads(r.value) for r in records)
        return out
    finally:
        await consumer.stop()


def agent(broker: str, prefix: str, state: Path) -> subprocess.Popen[str]:
    argv = [str(BREAKFIX), "node-agent", "--simulate", "--node", "n1", "--broker", broker]
    argv += ["--state-dir", str(state), "--exit-after", "1", "--verbose"]
    env = {**os.environ, "BREAKFIX_TOPIC_PREFIX": prefix}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> str:
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return err


def test_forged_commands_never_act_and_a_redelivered_reboot_is_answered_from_the_journal(
    tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    broker, prefix = tansu.url, f"g{uuid.uuid4().hex[:8]}."
    asyncio.run(make_topics(broker, prefix))
    s = StreamSettings()
    actuators, guard = load_signer(s, "actuators"), load_signer(s, "guard")
    rogue = Signer.generate(actuators.key_id, "actuators")
    now = time.time()
    forged = [
        orjson.dumps(command("f1/reboot")),
        orjson.dumps(guard.seal(command("f2/reboot"), now)),
        orjson.dumps(rogue.seal(command("f3/reboot"), now)),
        orjson.dumps(actuators.seal(command("f4/reboot"), now - 3_600)),
        orjson.dumps(actuators.seal(command("f5/reboot"), now + 3_600)),
    ]
    good = orjson.dumps(actuators.seal(command("ok/reboot"), now))
    asyncio.run(send(broker, prefix + "breakfix.commands", [*forged, good]))
    first = finish(agent(broker, prefix, tmp_path / "agent"))
    asyncio.run(send(broker, prefix + "breakfix.commands", [good]))  # redelivered after a restart
    second = finish(agent(broker, prefix, tmp_path / "agent"))

    answers = asyncio.run(read_all(broker, prefix + "breakfix.events"))
    letters = asyncio.run(read_all(broker, prefix + "breakfix.deadletter"))
    assert [a["data"]["request_id"] for a in answers] == ["ok/reboot", "ok/reboot"], (
        "only the signed command acts"
    )
    assert answers[0]["data"] == answers[1]["data"] and answers[0]["time"] == answers[1]["time"], (
        "the redelivered reboot is answered from the journal, not run again"
    )
    assert all(a["seal"]["signer"] == "agent" for a in answers), "answers carry the agent's seal"
    assert sorted(letter["reason"] for letter in letters) == sorted(
        ["unsigned", "wrong_signer", "bad_signature", "expired", "future_dated"]
    )
    assert "'expired': 1" in " ".join(first.split()) and "refused none" in " ".join(second.split())


def test_the_controller_counts_only_the_real_agents_signed_answer_to_its_own_request(
    tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    broker, prefix = tansu.url, f"h{uuid.uuid4().hex[:8]}."
    asyncio.run(make_topics(broker, prefix))
    s = StreamSettings()
    actuators, agent_key = load_signer(s, "actuators"), load_signer(s, "agent")
    other_pool = Signer.generate("agent-infer", "agent")
    ring = Keyring.parse(trust_path(s).read_text() + other_pool.trust_line("gpu-infer-*"))
    req = ActionRequest.model_validate(command("d-9/diag", "dcgm_diag", node="gpu-train-1"))

    def answer(node: str = "gpu-train-1") -> dict[str, Any]:
        return {
            "id": f"{req.id}/result", "type": "action.result", "source": "node-agent/x",
            "time": datetime.now(UTC).isoformat(), "node": node,
            "data": {"decision_id": "d-9", "action": "dcgm_diag", "status": "succeeded",
                     "validation": "passed", "request_id": req.id},
        }  # fmt: skip

    forged = [
        orjson.dumps(answer()),
        orjson.dumps(actuators.seal(answer(), time.time())),
        orjson.dumps(other_pool.seal(answer(), time.time())),
        orjson.dumps(agent_key.seal(answer("gpu-train-2"), time.time())),
    ]
    with KafkaCommandTransport(broker, actuators, ring, prefix) as transport:
        timer = threading.Timer(1.0, lambda: asyncio.run(send(broker, prefix + "breakfix.events", forged)))
        timer.start()
        with pytest.raises(TemporaryError, match="no answer"):
            transport.request(req, timeout_s=5.0)
        timer.join()
        assert transport.refused == {"unsigned": 1, "wrong_signer": 1, "out_of_scope": 1, "wrong_node": 1}
        real = orjson.dumps(agent_key.seal(answer(), time.time()))
        timer = threading.Timer(1.0, lambda: asyncio.run(send(broker, prefix + "breakfix.events", [real])))
        timer.start()
        result = transport.request(req, timeout_s=10.0)
        timer.join()
    assert result.data.validation == "passed" and result.node == "gpu-train-1"
    assert load_keyring(s).keys, "the session trust file is in use"
