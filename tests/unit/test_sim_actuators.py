"""Simulated actuators: which decisions act, when results arrive, and validation against ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from schemas.events import ActionResult
from schemas.parse import validate_event_dict
from sim.simulator.actuators import DURATIONS_S, SimulatedActuators
from sim.simulator.labels import Label

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def _decision(
    id_: str,
    action: ActionKind,
    at: datetime = T0,
    *,
    mode: Mode = Mode.AUTO,
    executable: bool = True,
    gpu: int | None = 3,
    node: str = "gpu-00001",
) -> Decision:
    return Decision(
        id=id_,
        time=at,
        node=node,
        gpu=gpu,
        from_state=NodeState.QUARANTINED,
        to_state=NodeState.REPAIRING,
        trigger="t",
        failure_class="gpu_hardware",
        confidence=0.99,
        action=action,
        mode=mode,
        executable=executable,
        reasons=["r"],
        evidence=["e"],
        policy_version="p",
    )


def _xid79(node: str = "gpu-00001", end: datetime | None = None) -> Label:
    return Label.model_validate(
        {
            "id": "l",
            "node": node,
            "gpu": 3,
            "class": "gpu_hardware",
            "start": T0 - timedelta(minutes=5),
            "end": end,
            "scenario": "s",
            "truth": "fault",
            "decisive": True,
            "expected": "quarantine",
            "repair": "reboot",
        }
    )


def test_result_timing_id_and_contract() -> None:
    act = SimulatedActuators(seed=1, failure_probability=0.0)
    ev, started = act.on_decision(_decision("d1", ActionKind.REBOOT))
    parsed = validate_event_dict(ev)
    assert isinstance(parsed, ActionResult)
    assert ev["id"] == "act-d1" and parsed.data.status == "succeeded" and parsed.data.decision_id == "d1"
    assert parsed.time == T0 + timedelta(seconds=DURATIONS_S["reboot"])
    # The repair reports in_progress when it starts (the node goes Repairing), as the engine does.
    begun = validate_event_dict(started)
    assert isinstance(begun, ActionResult) and started["id"] == "act-d1:started"
    assert begun.data.status == "in_progress" and begun.data.action == "reboot" and begun.time == T0
    assert act.on_decision(_decision("d1", ActionKind.REBOOT)) == [ev, started]  # idempotent per id


def test_only_executable_or_followed_recommendations_act() -> None:
    plain = SimulatedActuators()
    follow = SimulatedActuators(follow_recommendations=True, operator_delay_s=600, failure_probability=0.0)
    rec = _decision("d2", ActionKind.DRAIN, mode=Mode.RECOMMEND, executable=False)
    shadow = _decision("d3", ActionKind.DRAIN, mode=Mode.SHADOW, executable=False)
    assert plain.on_decision(rec) == [] and follow.on_decision(shadow) == []
    assert plain.on_decision(_decision("d4", ActionKind.TICKET)) == []
    ev, started = follow.on_decision(rec)
    assert started["time"] == (T0 + timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ev["time"] == (T0 + timedelta(seconds=600 + DURATIONS_S["drain"])).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_failures_are_deterministic_per_decision_and_follow_the_probability() -> None:
    never, always = SimulatedActuators(failure_probability=0.0), SimulatedActuators(failure_probability=1.0)
    assert never.on_decision(_decision("x", ActionKind.REBOOT))[0]["data"]["status"] == "succeeded"
    assert always.on_decision(_decision("x", ActionKind.REBOOT))[0]["data"]["status"] == "failed"
    some = [SimulatedActuators(seed=4, failure_probability=0.3) for _ in range(2)]
    runs = [
        [a.on_decision(_decision(f"d{i}", ActionKind.GPU_RESET))[0]["data"]["status"] for i in range(400)]
        for a in some
    ]
    assert runs[0] == runs[1]
    assert 80 <= runs[0].count("failed") <= 160


def test_validation_depends_on_truth_a_reset_does_not_fix_a_gpu_off_the_bus() -> None:
    act = SimulatedActuators(seed=0, labels=[_xid79()], failure_probability=0.0)
    act.on_decision(_decision("reset", ActionKind.GPU_RESET))
    (v1,) = act.on_decision(_decision("v1", ActionKind.VALIDATE, T0 + timedelta(minutes=10)))
    assert v1["data"]["validation"] == "failed"
    act.on_decision(_decision("reboot", ActionKind.REBOOT, T0 + timedelta(minutes=30)))
    (v2,) = act.on_decision(_decision("v2", ActionKind.VALIDATE, T0 + timedelta(hours=1)))
    assert v2["data"]["validation"] == "passed"


def test_validation_passes_without_labels_and_on_other_nodes() -> None:
    act = SimulatedActuators(labels=[_xid79()], failure_probability=0.0)
    (ok,) = act.on_decision(_decision("v", ActionKind.VALIDATE, node="gpu-00002"))
    assert ok["data"]["validation"] == "passed"
    (ok2,) = SimulatedActuators(failure_probability=0.0).on_decision(_decision("v", ActionKind.VALIDATE))
    assert ok2["data"]["validation"] == "passed"
