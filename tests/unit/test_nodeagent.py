"""Node agent: commands in, results out, with the refusals that keep it safe.

The GPU is simulated through the GpuOps seam (no GPU here); the real command path (subprocess CLI,
aiokafka against a real Tansu broker) runs as it would on a node.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from actuators.base import PermanentError, Refused, StepContext, StepSpec
from actuators.nodeagent import NodeAgentActuator
from actuators.nodeagent.kafka_transport import KafkaCommandTransport
from actuators.simulated import Recorded, SimFault, SimulatedFleet
from agents.nodeagent import LocalTransport, NodeAgent, SimulatedGpuOps
from agents.nodeagent.gpu import parse_dcgmi
from agents.nodeagent.loop import addressee
from schemas.actions import ActionRequest
from streams.keys import load_keyring, load_signer
from streams.settings import StreamSettings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BREAKFIX = Path(sys.executable).with_name("breakfix")


def request(
    action: str, gpu: int | None = None, rid: str = "d-1/step", age_s: float = 0, **params: object
) -> ActionRequest:
    return ActionRequest(
        id=rid,
        decision_id="d-1",
        node="n1",
        gpu=gpu,
        action=action,
        playbook="xid-ecc-conditional-drain-gpu-reset",
        playbook_version="1.0",
        step="step",
        params=params,
        time=NOW - timedelta(seconds=age_s),
    )


def agent(tmp_path: Path, ops: SimulatedGpuOps | None = None) -> NodeAgent:
    return NodeAgent("n1", ops or SimulatedGpuOps(gpus=8), tmp_path / "bundles", clock=lambda: NOW)


def test_gpu_reset_succeeds_once_and_a_redelivery_does_not_reset_again(tmp_path: Path) -> None:
    ops = SimulatedGpuOps(gpus=8)
    a = agent(tmp_path, ops)
    first = a.handle(request("gpu_reset", gpu=3))
    assert first is not None and first.data.status == "succeeded" and first.node == "n1"
    assert first.data.decision_id == "d-1" and first.data.gpu == 3
    again = a.handle(request("gpu_reset", gpu=3))
    assert again == first
    assert ops.calls == [("reset", 3)], "a redelivered command must not reset twice"


@pytest.mark.parametrize(
    ("req", "why"),
    [
        (request("gpu_reset", gpu=9), "below 8"),
        (request("gpu_reset"), "needs a GPU index"),
        (request("format_disk"), "unknown action"),
        (request("reboot", age_s=3600), "old"),
        (request("reboot").model_copy(update={"replay": True}), "replayed"),
        (request("dcgm_diag", level=7), "level must be"),
    ],
)
def test_refusals_never_touch_the_gpu(tmp_path: Path, req: ActionRequest, why: str) -> None:
    ops = SimulatedGpuOps(gpus=8)
    result = agent(tmp_path, ops).handle(req)
    assert result is not None and result.data.status == "refused" and why in result.data.detail
    assert ops.calls == []


def test_reset_refused_while_a_process_holds_the_gpu(tmp_path: Path) -> None:
    ops = SimulatedGpuOps(gpus=8, busy={2: [4242]})
    result = agent(tmp_path, ops).handle(request("gpu_reset", gpu=2))
    assert result is not None and result.data.status == "refused" and "4242" in result.data.detail
    assert ops.calls == []


def test_commands_for_another_node_are_ignored(tmp_path: Path) -> None:
    assert agent(tmp_path).handle(request("reboot").model_copy(update={"node": "n2"})) is None


def test_one_process_for_several_simulated_nodes_routes_each_command_to_its_nodes_agent(
    tmp_path: Path,
) -> None:
    """`breakfix node-agent --simulate --node a --node b` (the local stack): a command reaches the
    agent of the node it names, another node's is nobody's here, and input naming no node still
    goes to one agent, whose admission dead-letters it."""
    ops = {n: SimulatedGpuOps(gpus=8) for n in ("n1", "n2")}
    agents = {n: NodeAgent(n, o, tmp_path / n, clock=lambda: NOW) for n, o in ops.items()}
    for_n2 = request("gpu_reset", gpu=1).model_copy(update={"node": "n2"})
    assert addressee(for_n2.model_dump_json().encode(), agents) is agents["n2"]
    for_n3 = request("reboot").model_copy(update={"node": "n3"})
    assert addressee(for_n3.model_dump_json().encode(), agents) is None
    assert addressee(b"not json", agents) is not None and addressee(b"[1]", agents) is not None
    assert addressee(b'{"node": ["n1"]}', agents) is None
    result = agents["n2"].handle(for_n2)
    assert result is not None and result.data.status == "succeeded"
    assert ops["n2"].calls and not ops["n1"].calls


def test_broken_gpu_reset_fails_and_diag_reports_failure(tmp_path: Path) -> None:
    a = agent(tmp_path, SimulatedGpuOps(gpus=4, broken={1}))
    reset = a.handle(request("gpu_reset", gpu=1))
    assert reset is not None and reset.data.status == "failed"
    diag = a.handle(request("dcgm_diag", rid="d-1/diag", level=2))
    assert diag is not None and diag.data.status == "succeeded" and diag.data.validation == "failed"
    assert "gpu1:memory" in diag.data.detail


def test_bundle_is_a_tarball_with_a_manifest(tmp_path: Path) -> None:
    result = agent(tmp_path).handle(request("collect_bundle", sections=["thermal", "xid_history"]))
    assert result is not None and result.data.status == "succeeded"
    path = Path((result.data.model_extra or {})["outputs"]["bundle_path"])
    with tarfile.open(path) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert "manifest.json" in names and any(n.startswith("thermal/") for n in names)
    assert [m["section"] for m in manifest] == ["thermal", "xid_history"]
    bad = agent(tmp_path).handle(request("collect_bundle", rid="x", sections=["no_such"]))
    assert bad is not None and bad.data.status == "failed" and "unknown bundle sections" in bad.data.detail


def test_dcgmi_json_parsing_finds_failures() -> None:
    doc = {
        "DCGM GPU Diagnostic": {
            "test_categories": [
                {"category": "Deployment", "tests": [{"name": "Denylist", "results": [{"status": "Pass"}]}]},
                {
                    "category": "Hardware",
                    "tests": [
                        {
                            "name": "Memory",
                            "results": [{"gpu_id": "0", "status": "Pass"}, {"gpu_id": "1", "status": "Fail"}],
                        }
                    ],
                },
            ]
        }
    }
    report = parse_dcgmi(2, json.dumps(doc), 226)
    assert not report.passed and report.failures == ("Memory",) and report.tests["Denylist"] == "Pass"
    ok = parse_dcgmi(1, json.dumps({"tests": [{"name": "Denylist", "status": "Pass"}]}), 0)
    assert ok.passed
    assert not parse_dcgmi(1, "garbage", 1).passed


class Open:
    def __init__(self, kill: bool = False) -> None:
        self.kill = kill

    def killswitch_on(self, pool: str | None) -> bool:
        return self.kill

    def excluded(self, node: str, pool: str | None) -> bool:
        return False


def ctx(step: str, kill: bool = False, gpu: int | None = 5) -> StepContext:
    return StepContext(
        decision_id="d-7",
        node="n1",
        step=step,
        playbook="p",
        playbook_version="1",
        safety=Open(kill),
        deadline=time.monotonic() + 30,
        gpu=gpu,
    )


def test_actuator_maps_agent_results_and_rechecks_the_kill_switch(tmp_path: Path) -> None:
    ops = SimulatedGpuOps(gpus=8, broken={6})
    act = NodeAgentActuator(LocalTransport({"n1": agent(tmp_path, ops)}), clock=lambda: NOW)
    reset = StepSpec(
        name="gpu-reset", actuator="node_agent", operation="gpu_reset", mutating=True, timeout_s=30
    )
    assert act.execute(reset, ctx("gpu-reset")).changed
    with pytest.raises(Refused, match="kill switch"):
        act.execute(reset, ctx("gpu-reset-2", kill=True))
    with pytest.raises(PermanentError, match="reset failed"):
        act.execute(reset, ctx("gpu-reset-3", gpu=6))
    diag = StepSpec(
        name="diag",
        actuator="node_agent",
        operation="dcgm_diag",
        mutating=False,
        timeout_s=30,
        params={"level": 1},
    )
    assert act.execute(diag, ctx("diag", kill=True)).validation == "failed", "reads run under the kill switch"
    assert ops.calls == [("reset", 5), ("reset", 6), ("diag", 1)]


def test_a_real_agent_standing_in_for_a_simulated_kind_repairs_the_simulated_fleet(tmp_path: Path) -> None:
    """The local stack's actuator stage: the GPU reset runs on the agent, and the simulated fleet
    records it as the repair its validation judges by; a reset the agent failed repairs nothing."""
    fault = SimFault("f-1", "n1", start=NOW.timestamp() - 60, gpu=5, repair="gpu_reset")
    fleet = SimulatedFleet([fault], now=lambda: NOW.timestamp())
    ops = SimulatedGpuOps(gpus=8, broken={6})
    act = Recorded(NodeAgentActuator(LocalTransport({"n1": agent(tmp_path, ops)}), clock=lambda: NOW), fleet)
    reset = StepSpec(
        name="gpu-reset", actuator="node_agent", operation="gpu_reset", mutating=True, timeout_s=30
    )
    assert act.name == "node_agent" and act.supports("gpu_reset") and not act.owns("n1")
    with pytest.raises(PermanentError):
        act.execute(reset, ctx("gpu-reset-bad", gpu=6))
    assert fleet.mutations == [] and fleet.broken("n1", 5, NOW.timestamp()) == fault
    assert act.execute(reset, ctx("gpu-reset")).changed
    assert [(m.kind, m.operation, m.gpu) for m in fleet.mutations] == [("node_agent", "gpu_reset", 5)]
    assert fleet.broken("n1", 5, NOW.timestamp()) is None
    assert ops.calls == [("reset", 6), ("reset", 5)]


def breakfix_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BREAKFIX), *args], capture_output=True, text=True, timeout=timeout)


def test_cli_refuses_without_a_gpu_unless_simulated() -> None:
    done = breakfix_cli("node-agent", "--node", "n1", "--broker", "127.0.0.1:1")
    assert done.returncode == 2
    assert "no GPU to act on" in done.stderr and "--simulate" in done.stderr


@pytest.mark.integration
def test_cli_simulated_agent_round_trip_over_kafka(tansu: object, tmp_path: Path) -> None:
    """A workflow step reaches `breakfix node-agent --simulate` through Kafka and gets its result;
    garbage and other nodes' commands on the topic are skipped without acting."""
    broker = tansu.url  # type: ignore[attr-defined]
    prefix = f"t{uuid.uuid4().hex[:8]}."

    async def setup() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        topics = (("breakfix.commands", 12), ("breakfix.events", 12))
        await admin.create_topics(
            [NewTopic(prefix + t, num_partitions=n, replication_factor=1) for t, n in topics]
        )
        await admin.close()

        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        other = request("gpu_reset", gpu=1, rid="d-9/other").model_copy(
            update={"node": "n2", "time": datetime.now(UTC)}
        )
        for raw in (b"{not json", other.model_dump_json().encode()):
            await producer.send_and_wait(prefix + "breakfix.commands", raw, key=b"n1")
        await producer.stop()

    asyncio.run(setup())
    proc = subprocess.Popen(
        [
            str(BREAKFIX),
            "node-agent",
            "--simulate",
            "--node",
            "n1",
            "--broker",
            broker,
            "--bundle-dir",
            str(tmp_path),
            "--exit-after",
            "1",
            "--state-dir",
            str(tmp_path / "agent"),
        ],
        env={**os.environ, "BREAKFIX_TOPIC_PREFIX": prefix},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        settings = StreamSettings()
        with KafkaCommandTransport(
            broker, load_signer(settings, "actuators"), load_keyring(settings), prefix
        ) as transport:
            act = NodeAgentActuator(transport)
            spec = StepSpec(
                name="gpu-reset", actuator="node_agent", operation="gpu_reset", mutating=True, timeout_s=60
            )
            step_ctx = replace(ctx("gpu-reset", gpu=1), deadline=time.monotonic() + 60)
            result = act.execute(spec, step_ctx)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert result.changed and result.detail == "GPU 1 reset (simulated)"
    assert result.outputs == {"gpu": 1}
