"""Validation before return to service: every requested check must pass; any failure fails the step
(the workflow escalates), and a check that cannot run never counts as a pass."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actuators.base import PermanentError, StepContext, StepSpec
from actuators.commands import CommandOutput
from actuators.nodeagent import NodeAgentActuator
from actuators.slurm.client import SlurmClient
from actuators.validation import SlurmCapacity, Validator
from agents.nodeagent import LocalTransport, NodeAgent, SimulatedGpuOps

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Virtual time: sleeping advances it, so a 600 s quiet window takes no real time."""

    def __init__(self) -> None:
        self.t = T0
        self.slept = 0.0

    def now(self) -> datetime:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept += s
        self.t += timedelta(seconds=s)


class Capacity:
    def __init__(self, allocatable: int | None, expected: int | None = 8) -> None:
        self.value = (allocatable, expected)

    def gpus(self, node: str) -> tuple[int | None, int | None]:
        return self.value


class Workload:
    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.ran: list[str] = []

    def run(self, node: str, gpu: int | None, timeout_s: float) -> tuple[bool, str]:
        self.ran.append(node)
        return self.ok, "nccl all-reduce 8 GPUs: 182 GB/s" if self.ok else "matmul result mismatch on GPU 3"


class Symptoms:
    def __init__(self, at: datetime | None) -> None:
        self.at = at

    def last_symptom(self, node: str) -> datetime | None:
        return self.at


class Open:
    def killswitch_on(self, pool: str | None) -> bool:
        return False

    def excluded(self, node: str, pool: str | None) -> bool:
        return False


def ctx(budget_s: float = 1800) -> StepContext:
    return StepContext(
        decision_id="d-1",
        node="n1",
        step="validate",
        playbook="xid",
        playbook_version="1.0",
        safety=Open(),
        deadline=time.monotonic() + budget_s,
        gpu=3,
    )


STEP = StepSpec(
    name="validate",
    actuator="validate",
    operation="run",
    mutating=False,
    timeout_s=1800,
    params={"dcgm_level": 2, "test_workload": True, "quiet_s": 600},
)


def validator(tmp_path: Path, clock: Clock, broken: set[int] | None = None, **kw: object) -> Validator:
    ops = SimulatedGpuOps(gpus=8, broken=broken)
    agent = NodeAgent("n1", ops, tmp_path, clock=clock.now)
    parts: dict[str, object] = {
        "agent": NodeAgentActuator(LocalTransport({"n1": agent}), clock=clock.now),
        "capacity": Capacity(8),
        "workload": Workload(True),
        "symptoms": Symptoms(None),
        **kw,
    }
    return Validator(**parts, poll_s=30, now=clock.now, sleep=clock.sleep)  # type: ignore[arg-type]


def test_all_checks_pass_after_the_quiet_window(tmp_path: Path) -> None:
    clock = Clock()
    result = validator(tmp_path, clock).execute(STEP, ctx())
    assert result.validation == "passed"
    assert set(result.outputs["checks"]) == {"dcgm_diag", "allocatable_gpus", "test_workload", "quiet"}
    assert clock.slept == pytest.approx(600), "it waited exactly the hysteresis time"


@pytest.mark.parametrize(
    ("kw", "broken", "check"),
    [
        ({}, {3}, "dcgm_diag"),
        ({"capacity": Capacity(7)}, None, "allocatable_gpus"),
        ({"capacity": Capacity(None)}, None, "allocatable_gpus"),
        ({"workload": Workload(False)}, None, "test_workload"),
        ({"workload": None}, None, "test_workload"),
        ({"symptoms": Symptoms(T0 + timedelta(seconds=200))}, None, "quiet"),
        ({"agent": None}, None, "dcgm_diag"),
    ],
)
def test_each_failed_or_missing_check_fails_validation(
    tmp_path: Path, kw: dict[str, object], broken: set[int] | None, check: str
) -> None:
    with pytest.raises(PermanentError, match=f"validation failed \\({check}\\)"):
        validator(tmp_path, Clock(), broken=broken, **kw).execute(STEP, ctx())


def test_a_symptom_before_validation_started_does_not_fail_it(tmp_path: Path) -> None:
    v = validator(tmp_path, Clock(), symptoms=Symptoms(T0 - timedelta(minutes=5)))
    assert v.execute(STEP, ctx()).validation == "passed"


def test_quiet_window_longer_than_the_budget_fails_without_waiting(tmp_path: Path) -> None:
    clock = Clock()
    with pytest.raises(PermanentError, match="shorter than the 600s quiet window"):
        validator(tmp_path, clock).execute(STEP, ctx(budget_s=300))
    assert clock.slept == 0


class SinfoRunner:
    def __init__(self, gres: str, state: str = "idle") -> None:
        self.doc = {"nodes": [{"name": "n1", "state": state, "state_flags": ["DRAIN"], "gres": gres}]}

    def run(self, argv: Sequence[str], timeout_s: float) -> CommandOutput:
        return CommandOutput(tuple(argv), 0, json.dumps(self.doc), "")


def test_slurm_capacity_reads_gres_and_treats_down_as_unknown() -> None:
    expected = {"n1": 4}.get
    assert SlurmCapacity(SlurmClient(SinfoRunner("gpu:h100:4(S:0-1)")), expected).gpus("n1") == (4, 4)
    assert SlurmCapacity(SlurmClient(SinfoRunner("gpu:3")), expected).gpus("n1") == (3, 4)
    assert SlurmCapacity(SlurmClient(SinfoRunner("gpu:4", state="down")), expected).gpus("n1") == (None, 4)
