"""The SLURM actuator against a real slurmctld + four slurmd (tests/fixtures/slurm.py).

What must hold on a real controller: a drain is job-aware (DRAINING while a job runs, DRAINED after),
resume lifts only our own drain, an operator's drain is never lifted (not by resume, not by a reboot
with nextstate=RESUME), the kill switch stops a drain at the last moment, and ``scontrol reboot ASAP
nextstate=RESUME`` brings the node back idle end to end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from actuators.base import Escalate, Refused, StepContext, StepSpec
from actuators.commands import SubprocessRunner
from actuators.slurm import SlurmActuator, SlurmClient

if TYPE_CHECKING:
    from tests.fixtures.slurm import SlurmCluster

pytestmark = pytest.mark.integration


@dataclass
class Switches:
    """The Safety re-check as actuators see it: a kill switch and an exclusion list."""

    kill: bool = False
    excluded_nodes: tuple[str, ...] = ()

    def killswitch_on(self, pool: str | None) -> bool:
        return self.kill

    def excluded(self, node: str, pool: str | None) -> bool:
        return node in self.excluded_nodes


def step(operation: str, timeout_s: float = 30, **params: object) -> StepSpec:
    return StepSpec(
        name=operation,
        actuator="slurm",
        operation=operation,
        mutating=True,
        timeout_s=timeout_s,
        params=params,
    )


def ctx(node: str, s: StepSpec, decision: str = "d-0001", safety: Switches | None = None) -> StepContext:
    return StepContext(
        decision_id=decision,
        node=node,
        step=s.name,
        playbook="xid-drain-reset",
        playbook_version="1.0.0",
        safety=safety or Switches(),
        deadline=time.monotonic() + s.timeout_s,
        failure_class="xid79",
    )


@pytest.fixture
def actuator(slurm: SlurmCluster) -> SlurmActuator:
    client = SlurmClient(SubprocessRunner({"SLURM_CONF": str(slurm.conf)}), timeout_s=10)
    return SlurmActuator(client, poll_s=0.2)


def submit(slurm: SlurmCluster, node: str, seconds: int) -> int:
    out = slurm.run(
        "sbatch", "--parsable", "-w", node, "--gres=gpu:1", "-o", "/dev/null", "--wrap", f"sleep {seconds}"
    )
    assert out.returncode == 0, out.stderr
    slurm.wait_state(node, lambda s: s.startswith(("MIXED", "ALLOCATED")))
    return int(out.stdout.strip().split(";")[0])


def test_drain_is_job_aware_and_resume_lifts_our_drain(slurm: SlurmCluster, actuator: SlurmActuator) -> None:
    submit(slurm, "gpu01", 2)
    first = step("drain", wait=False)
    result = actuator.execute(first, ctx("gpu01", first))
    assert result.changed
    assert result.outputs["phase"] == "DRAINING" and result.outputs["active_jobs"] == 1
    assert slurm.node("gpu01")["reason"] == "breakfix: d-0001 xid79"
    assert actuator.owns("gpu01")

    again = step("drain", timeout_s=30)
    result = actuator.execute(again, ctx("gpu01", again))
    assert not result.changed, "a repeated drain of the same decision must change nothing"
    assert result.outputs["phase"] == "DRAINED" and result.outputs["active_jobs"] == 0
    assert "DRAIN" in slurm.state("gpu01")

    resume = step("resume")
    result = actuator.execute(resume, ctx("gpu01", resume))
    assert result.changed
    assert "DRAIN" not in result.outputs["state"]
    slurm.wait_state("gpu01", lambda s: s == "IDLE")  # UNDRAIN leaves NOT_RESPONDING until the next ping
    assert slurm.node("gpu01")["reason"] == ""


def test_drain_budget_spent_with_jobs_running_escalates_and_keeps_the_drain(
    slurm: SlurmCluster, actuator: SlurmActuator
) -> None:
    submit(slurm, "gpu02", 60)
    s = step("drain", timeout_s=1.0)
    with pytest.raises(Escalate, match="still DRAINING with 1 active job"):
        actuator.execute(s, ctx("gpu02", s))
    assert slurm.state("gpu02") == "MIXED+DRAIN"
    assert slurm.node("gpu02")["reason"].startswith("breakfix: d-0001")


def test_max_active_jobs_refuses_to_drain_a_busy_node(slurm: SlurmCluster, actuator: SlurmActuator) -> None:
    submit(slurm, "gpu03", 60)
    s = step("drain", max_active_jobs=0)
    with pytest.raises(Refused, match="runs 1 job"):
        actuator.execute(s, ctx("gpu03", s))
    assert "DRAIN" not in slurm.state("gpu03")


def test_operator_drain_is_never_lifted(slurm: SlurmCluster, actuator: SlurmActuator) -> None:
    out = slurm.scontrol("update", "NodeName=gpu02", "State=DRAIN", "Reason=operator: PSU swap ticket 88")
    assert out.returncode == 0, out.stderr
    assert not actuator.owns("gpu02")

    for op in ("drain", "resume", "reboot"):
        s = step(op)
        with pytest.raises(Refused, match="someone else"):
            actuator.execute(s, ctx("gpu02", s))
    assert slurm.state("gpu02") == "IDLE+DRAIN"
    assert slurm.node("gpu02")["reason"] == "operator: PSU swap ticket 88"


def test_kill_switch_and_exclusion_stop_a_drain_at_the_last_moment(
    slurm: SlurmCluster, actuator: SlurmActuator
) -> None:
    s = step("drain")
    with pytest.raises(Refused, match="kill switch"):
        actuator.execute(s, ctx("gpu04", s, safety=Switches(kill=True)))
    with pytest.raises(Refused, match="excluded"):
        actuator.execute(s, ctx("gpu04", s, safety=Switches(excluded_nodes=("gpu04",))))
    assert slurm.state("gpu04") == "IDLE"


def test_reboot_asap_nextstate_resume_end_to_end(slurm: SlurmCluster, actuator: SlurmActuator) -> None:
    boot_before = slurm.node("gpu03")["boot_time"]
    drain = step("drain")
    actuator.execute(drain, ctx("gpu03", drain, decision="d-0042"))
    reboot = step("reboot", timeout_s=60, nextstate="RESUME")
    started = time.monotonic()
    result = actuator.execute(reboot, ctx("gpu03", reboot, decision="d-0042"))
    took = time.monotonic() - started
    assert result.changed
    node = slurm.node("gpu03")
    assert slurm.state("gpu03") == "IDLE", "nextstate=RESUME must lift our drain once the node is back"
    assert node["boot_time"] > boot_before
    assert node["reason"] == ""
    reboots = Path(slurm.dir, "log", "reboots.log").read_text()
    assert "reboot gpu03" in reboots and "gpu01" not in reboots
    print(f"reboot gpu03: {took:.1f}s from request to IDLE")
