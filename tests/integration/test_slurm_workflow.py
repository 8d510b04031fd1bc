"""Decision → workflow engine → SLURM drain (real slurmctld) → GPU reset via the node agent →
validation → resume; and the reboot playbook with ``scontrol reboot ASAP nextstate=RESUME``.
The playbooks are the shipped catalog's (slurm-xid-drain-gpu-reset, slurm-reboot): with no
Kubernetes actuator registered, selection falls to them.

Real: the engine, its journal, the SLURM actuator on the test cluster, the node agent and the
validator. Simulated: only the GPUs behind the agent (no GPU here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from actuators.commands import SubprocessRunner
from actuators.nodeagent import NodeAgentActuator
from actuators.playbooks import load_catalog
from actuators.slurm import SlurmActuator, SlurmClient, SlurmNodeFacts
from actuators.validation import SlurmCapacity, Validator
from actuators.workflow import Journal, WorkflowEngine, from_decision
from agents.nodeagent import LocalTransport, NodeAgent, SimulatedGpuOps
from schemas.decision import ActionKind
from tests.fakes.workflow_doubles import SwitchSafety, xid79_decision

if TYPE_CHECKING:
    from tests.fixtures.slurm import SlurmCluster

pytestmark = pytest.mark.integration


def engine(
    slurm: SlurmCluster, tmp_path: Path, ops: SimulatedGpuOps, events: list[dict[str, Any]]
) -> WorkflowEngine:
    client = SlurmClient(SubprocessRunner({"SLURM_CONF": str(slurm.conf)}))
    agents = {n: NodeAgent(n, ops, tmp_path / "bundles") for n in slurm.nodes}
    agent = NodeAgentActuator(LocalTransport(agents))
    validator = Validator(agent=agent, capacity=SlurmCapacity(client, lambda n: 4), poll_s=0.1)
    return WorkflowEngine(
        load_catalog(),
        [SlurmActuator(client, poll_s=0.2), agent, validator],
        Journal(tmp_path / "journal.db"),
        SwitchSafety(),
        events.append,
        facts=SlurmNodeFacts(client),
    )


def test_xid79_drain_reset_validate_resume_on_slurm(slurm: SlurmCluster, tmp_path: Path) -> None:
    out = slurm.run("sbatch", "-w", "gpu01", "--gres=gpu:1", "-o", "/dev/null", "--wrap", "sleep 2")
    assert out.returncode == 0, out.stderr
    slurm.wait_state("gpu01", lambda s: s.startswith("MIXED"))
    ops = SimulatedGpuOps(gpus=4)
    events: list[dict[str, Any]] = []

    outcome = engine(slurm, tmp_path, ops, events).run(from_decision(xid79_decision(node="gpu01")))

    assert outcome.status == "succeeded", outcome.detail
    assert outcome.playbook == "slurm-xid-drain-gpu-reset"
    assert outcome.executed == ("drain", "gpu-reset", "validate", "resume")
    assert ops.calls == [("reset", 3), ("diag", 2)], "reset GPU 3 only after the job drained, then diag"
    drained = next(e for e in events if e["data"]["step"] == "drain")
    assert "DRAINED" in drained["data"]["detail"]
    slurm.wait_state("gpu01", lambda s: s == "IDLE")
    assert slurm.node("gpu01")["reason"] == ""


def test_failed_validation_escalates_and_keeps_the_node_drained(slurm: SlurmCluster, tmp_path: Path) -> None:
    ops = SimulatedGpuOps(gpus=4, broken={2})  # the reset "works" on GPU 3 but diag finds GPU 2 bad
    events: list[dict[str, Any]] = []
    outcome = engine(slurm, tmp_path, ops, events).run(from_decision(xid79_decision(node="gpu02")))
    assert outcome.status == "escalated" and "dcgm_diag" in outcome.detail
    assert "resume" not in outcome.executed
    assert slurm.state("gpu02") == "IDLE+DRAIN"
    assert slurm.node("gpu02")["reason"].startswith("breakfix: dec-xid79")


def test_operator_drain_is_not_lifted_by_the_workflow(slurm: SlurmCluster, tmp_path: Path) -> None:
    slurm.scontrol("update", "NodeName=gpu03", "State=DRAIN", "Reason=operator: BMC firmware")
    ops = SimulatedGpuOps(gpus=4)
    outcome = engine(slurm, tmp_path, ops, []).run(from_decision(xid79_decision(node="gpu03")))
    assert outcome.status == "paused" and "someone else" in outcome.detail
    assert ops.calls == [], "nothing runs on a node an operator holds"
    assert slurm.state("gpu03") == "IDLE+DRAIN"
    assert slurm.node("gpu03")["reason"] == "operator: BMC firmware"


def test_reboot_playbook_reboots_and_resumes_through_slurm(slurm: SlurmCluster, tmp_path: Path) -> None:
    decision = xid79_decision(
        node="gpu04", decision_id="dec-reboot", failure_class="node_os", action=ActionKind.REBOOT, gpu=None
    )
    events: list[dict[str, Any]] = []
    outcome = engine(slurm, tmp_path, SimulatedGpuOps(gpus=4), events).run(from_decision(decision))
    assert outcome.status == "succeeded", outcome.detail
    assert outcome.playbook == "slurm-reboot"
    assert outcome.executed == ("drain", "reboot", "validate")
    assert slurm.state("gpu04") == "IDLE" and slurm.node("gpu04")["reason"] == ""
    assert "reboot gpu04" in (slurm.dir / "log" / "reboots.log").read_text()
