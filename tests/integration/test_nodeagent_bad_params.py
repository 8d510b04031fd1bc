"""A schema-valid command with a bad parameter is refused by the node agent, which carries on.

``ActionRequest.params`` is free-form in the contract, so ``timeout_s: "soon"`` passes the schema. The
agent converted it inside its handler, the exception left the loop before the commit, and the
restarted agent read the same command and crashed again, forever. Here the real ``breakfix node-agent
--simulate`` reads such commands (each sealed by the actuator stage's key, as every command an agent
acts on must be) from Kafka ahead of a good one: it must answer each bad one ``refused`` naming the
parameter, then run the good one, and exit cleanly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.nodeagent import NodeAgent, SimulatedGpuOps
from schemas.actions import ActionRequest
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.keys import load_signer
from streams.settings import StreamSettings

BREAKFIX = [sys.executable, "-c", "from breakfix.cli.main import main; main()"]
ROOT = Path(__file__).resolve().parents[2]
BAD = [
    ("gpu_reset", {"gpu": 1, "timeout_s": "soon"}, "timeout_s"),
    ("gpu_reset", {"gpu": "all"}, "gpu"),
    ("dcgm_diag", {"level": "deep"}, "level"),
    ("collect_bundle", {"sections": 7}, "sections"),
    ("reboot", {"timeout_s": -1}, "timeout_s"),
]


def _command(action: str, params: dict[str, Any], rid: str) -> ActionRequest:
    return ActionRequest(id=rid, decision_id="d-1", node="n1", action=action, playbook="p",
                         playbook_version="1", step="s", params=params, time=datetime.now(UTC))  # fmt: skip


@pytest.mark.parametrize(("action", "params", "name"), BAD)
def test_each_bad_parameter_is_refused_before_anything_runs(
    tmp_path: Path, action: str, params: dict[str, Any], name: str
) -> None:
    ops = SimulatedGpuOps(gpus=8)
    result = NodeAgent("n1", ops, tmp_path).handle(_command(action, params, "r-1"))
    assert result is not None and result.data.status == "refused" and name in result.data.detail
    assert ops.calls == []


@pytest.mark.integration
def test_the_agent_over_kafka_answers_bad_commands_and_carries_on(
    tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    commands = [_command(a, p, f"bad-{i}") for i, (a, p, _) in enumerate(BAD)]
    commands.append(_command("gpu_reset", {"gpu": 2}, "good"))

    async def setup() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=tansu.url)
        await admin.start()
        await admin.create_topics(
            [NewTopic(prefix + t, 1, 1) for t in ("breakfix.commands", "breakfix.events")]
        )
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=tansu.url)
        await producer.start()
        signer = load_signer(StreamSettings(), "actuators")
        for c in commands:
            sealed = signer.seal(c.model_dump(mode="json"), time.time())
            await producer.send_and_wait(prefix + "breakfix.commands", orjson.dumps(sealed), key=b"n1")
        await producer.stop()

    async def answers() -> dict[str, dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=tansu.url, enable_auto_commit=False)
        await consumer.start()
        tp = TopicPartition(prefix + "breakfix.events", 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = await consumer.getmany(tp, timeout_ms=3000)
        await consumer.stop()
        return {d["data"]["request_id"]: d["data"] for d in (orjson.loads(r.value) for r in got.get(tp, []))}

    asyncio.run(setup())
    cmd = [*BREAKFIX, "node-agent", "--simulate", "--node", "n1", "--broker", tansu.url,
           "--bundle-dir", str(tmp_path), "--state-dir", str(tmp_path / "state"),
           "--exit-after", str(len(commands))]  # fmt: skip
    env = {**os.environ, "BREAKFIX_TOPIC_PREFIX": prefix, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = asyncio.run(answers())
    for i, (_, _, name) in enumerate(BAD):
        assert got[f"bad-{i}"]["status"] == "refused" and name in got[f"bad-{i}"]["detail"], got[f"bad-{i}"]
    assert got["good"]["status"] == "succeeded", "the command after the bad ones still runs"
