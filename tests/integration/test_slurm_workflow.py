"""Decision → workflow engine → SLURM drain (real slurmctld) → GPU reset via the node agent →
validation → resume; and the reboot playbook with ``scontrol reboot ASAP nextstate=RESUME``.

Real: the engine, its journal, the SLURM actuator on the test cluster, the node agent and the
validator. Simulated: only the GPUs behind the agent (no GPU here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from actuators.commands import SubprocessRunner
from actuators.nodeagent import LocalTransport, NodeAgent, NodeAgentActuator, SimulatedGpuOps
from actuators.playbooks.loader import Catalog, parse_playbook
from actuators.slurm import SlurmActuator, SlurmClient, SlurmNodeFacts
from actuators.validation import SlurmCapacity, Validator
from actuators.workflow import Journal, WorkflowEngine, from_decision
from schemas.decision import ActionKind
from tests.fakes.workflow_doubles import SwitchSafety, xid79_decision

if TYPE_CHECKING:
    from tests.fixtures.slurm import SlurmCluster

pytestmark = pytest.mark.integration

XID_SLURM = """
name: slurm-xid-drain-gpu-reset
version: "1.0"
description: SLURM node - drain (job-aware), reset the GPU through the node agent, validate, resume.
failure_classes: [gpu_hardware, gpu_memory]
actions: [gpu_reset]
preconditions: {from_states: [Suspect, Quarantined]}
steps:
  - {name: drain, actuator: slurm, operation: drain, mutating: true, timeout_s: 30}
  - {name: gpu-reset, actuator: node_agent, operation: gpu_reset, mutating: true, timeout_s: 30}
  - name: validate
    actuator: validate
    operation: run
    mutating: false
    timeout_s: 30
    params: {dcgm_level: 2}
  - {name: resume, actuator: slurm, operation: resume, mutating: true, timeout_s: 30}
"""

REBOOT_SLURM = """
name: slurm-reboot
version: "1.0"
description: SLURM node - drain, scontrol reboot ASAP nextstate=RESUME, validate.
failure_classes: [node_os]
actions: [reboot]
preconditions: {from_states: [Suspect, Quarantined]}
steps:
  - {name: drain, actuator: slurm, operation: drain, mutating: true, timeout_s: 30}
  - name: reboot
    actuator: slurm
    operation: reboot
    mutating: true
    timeout_s: 60
    params: {nextstate: RESUME}
  - {name: validate, actuator: validate, operation: run, mutating: false, timeout_s: 30}
"""


def engine(
    slurm: SlurmCluster, tmp_path: Path, ops: SimulatedGpuOps, events: list[dict[str, Any]]
) -> WorkflowEngine:
    client = SlurmClient(SubprocessRunner({"SLURM_CONF": str(slurm.conf)}))
    agents = {n: NodeAgent(n, ops, tmp_path / "bundles") for n in slurm.nodes}
    agent = NodeAgentActuator(LocalTransport(agents))
    validator = Validator(agent=agent, capacity=SlurmCapacity(client, lambda n: 4), poll_s=0.1)
    catalog = Catalog([parse_playbook(XID_SLURM, "xid"), parse_playbook(REBOOT_SLURM, "reboot")])
    return WorkflowEngine(
        catalog,
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
    assert outcome.executed == ("drain", "reboot", "validate")
    assert slurm.state("gpu04") == "IDLE" and slurm.node("gpu04")["reason"] == ""
    assert "reboot gpu04" in (slurm.dir / "log" / "reboots.log").read_text()
