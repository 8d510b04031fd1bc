"""Simulated actuators against ground truth, driven through the real workflow engine and dispatcher:
a fault the labels say a reset or reboot clears validates clean, one that needs an RMA fails
validation and escalates; repeats are no-ops; failures are deterministic from the seed; decisions
that may not act never reach an actuator."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actuators.base import StepContext, StepSpec
from actuators.dispatch import Dispatcher
from actuators.playbooks import load_catalog
from actuators.simulated import OPERATIONS, SimFault, SimulatedActuator, SimulatedFleet, simulated_actuators
from actuators.workflow import Journal, WorkflowEngine
from schemas.decision import ActionKind, Decision, GuardCheck, Mode

T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


class Open:
    def killswitch_on(self, pool: str | None) -> bool:
        return False

    def excluded(self, node: str, pool: str | None) -> bool:
        return False


def decision(node: str, action: ActionKind, gpu: int | None = None, **over: Any) -> Decision:
    fields: dict[str, Any] = {
        "id": f"d-{node}-{action.value}",
        "time": datetime.fromtimestamp(T0 + 60, UTC),
        "node": node,
        "gpu": gpu,
        "from_state": "Suspect",
        "to_state": "Quarantined",
        "trigger": "t",
        "failure_class": "gpu_memory" if gpu is not None else "gpu_hardware",
        "confidence": 0.9,
        "action": action,
        "mode": Mode.AUTO,
        "executable": True,
        "reasons": [],
        "evidence": [],
        "guard": [GuardCheck(name="headroom", passed=True)],
        "policy_version": "t",
    }
    return Decision(**{**fields, **over})


def rig(
    faults: list[SimFault], tmp: Path, **fleet: Any
) -> tuple[Dispatcher, SimulatedFleet, list[dict[str, Any]]]:
    sim = SimulatedFleet(faults, now=lambda: T0 + 120, ledger=tmp / "ledger.jsonl", **fleet)
    events: list[dict[str, Any]] = []
    engine = WorkflowEngine(
        load_catalog(), simulated_actuators(sim), Journal(":memory:"), Open(), events.append, facts=sim
    )
    return Dispatcher(engine, events.append, now=lambda: datetime.now(UTC)), sim, events


def workflow(events: list[dict[str, Any]], decision_id: str) -> dict[str, Any]:
    data: dict[str, Any] = next(
        e["data"]
        for e in events
        if e["data"]["decision_id"] == decision_id and e["data"]["step"] == "workflow"
    )
    return data


@pytest.mark.parametrize(
    ("repair", "action", "gpu", "outcome"),
    [
        ("gpu_reset", ActionKind.GPU_RESET, 2, "succeeded"),  # gpu-reset-only playbook clears it
        ("reboot", ActionKind.REBOOT, None, "succeeded"),  # the reboot playbook clears it
        ("reboot", ActionKind.GPU_RESET, None, "escalated"),  # a reset is too weak for it
        ("rma", ActionKind.GPU_RESET, 2, "escalated"),  # hardware: validation fails
    ],
)
def test_validation_follows_ground_truth(
    repair: str, action: ActionKind, gpu: int | None, outcome: str, tmp_path: Path
) -> None:
    dispatch, _, events = rig([SimFault("f", "n1", start=T0, gpu=gpu, repair=repair)], tmp_path)
    d = decision("n1", action, gpu)
    handled = dispatch.handle(d)
    assert handled.verdict == outcome
    validate = next(e["data"] for e in events if e["data"]["step"] == "validate")
    assert validate["validation"] == ("passed" if outcome == "succeeded" else "failed")


def test_validate_decision_is_answered_from_the_playbooks_validation(tmp_path: Path) -> None:
    dispatch, sim, events = rig([], tmp_path)
    q = decision("n1", ActionKind.REBOOT)
    assert dispatch.handle(q).verdict == "succeeded"
    v = decision(
        "n1", ActionKind.VALIDATE, id="v1", from_state="Quarantined", to_state="Validating",
        evidence=[f"{q.id}/workflow:succeeded"],
    )  # fmt: skip
    before = len(sim.mutations)
    assert dispatch.handle(v).verdict == "validated"
    answer = events[-1]["data"]
    assert (answer["action"], answer["validation"], answer["decision_id"]) == ("validate", "passed", "v1")
    assert "playbook reboot" in answer["detail"] and len(sim.mutations) == before


@pytest.mark.parametrize(
    "over",
    [
        {"replay": True},
        {"stale": True},
        {"mode": Mode.SHADOW, "executable": False},
        {"mode": Mode.RECOMMEND, "executable": False},
    ],
)
def test_decisions_that_may_not_act_reach_no_actuator(over: dict[str, Any], tmp_path: Path) -> None:
    dispatch, sim, events = rig([], tmp_path)
    assert dispatch.handle(decision("n1", ActionKind.REBOOT, **over)).verdict == "not_executable"
    assert sim.mutations == [] and events == []


def test_repeated_step_is_a_no_op_even_after_a_restart(tmp_path: Path) -> None:
    step = StepSpec(name="cordon", actuator="kubernetes", operation="cordon", mutating=True, timeout_s=5)
    ctx = StepContext(
        decision_id="d",
        node="n1",
        step="cordon",
        playbook="p",
        playbook_version="1",
        safety=Open(),
        deadline=1e12,
    )
    first = SimulatedActuator("kubernetes", SimulatedFleet(now=lambda: T0, ledger=tmp_path / "l.jsonl"))
    assert first.execute(step, ctx).changed
    restarted = SimulatedActuator("kubernetes", SimulatedFleet(now=lambda: T0, ledger=tmp_path / "l.jsonl"))
    assert not restarted.execute(step, ctx).changed
    assert len(restarted.fleet.mutations) == 1


def test_failures_are_deterministic_from_the_seed(tmp_path: Path) -> None:
    keys = [f"d{i}/cordon" for i in range(400)]

    def failing(seed: int) -> list[str]:
        sim = SimulatedFleet(now=lambda: T0, seed=seed, failure_probability=0.1)
        return [k for k in keys if sim.fails(k)]

    assert failing(1) == failing(1) != failing(2)
    assert 15 < len(failing(1)) < 70


def test_every_shipped_step_kind_is_served() -> None:
    steps = {
        (s.actuator, s.operation)
        for pb in load_catalog().playbooks.values()
        for s in [*pb.steps, *pb.rollback]
    }
    # NICo is exercised by its real actuator against the NICo stand-in (tests/integration/test_nico.py)
    unsimulated = {kind for kind, _ in steps if kind not in OPERATIONS}
    assert unsimulated == {"nico"}
    assert steps and all(op in OPERATIONS[kind] for kind, op in steps if kind in OPERATIONS)
