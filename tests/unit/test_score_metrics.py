"""Scoring math on small hand-made label and decision sets: every figure checked to its exact value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from sim.score.compare import compare, ratio
from sim.score.inputs import NodeInfo
from sim.score.metrics import score
from sim.simulator.labels import Label

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
S = NodeState


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _label(
    id_: str,
    node: str,
    gpu: int | None,
    cls: str,
    truth: str,
    expected: str,
    end: float | None,
    decisive: bool = False,
    scope: dict[str, Any] | None = None,
) -> Label:
    return Label.model_validate(
        {
            "id": id_,
            "node": node,
            "gpu": gpu,
            "class": cls,
            "start": T0,
            "end": _t(end) if end is not None else None,
            "scenario": "hand",
            "truth": truth,
            "expected": expected,
            "decisive": decisive,
            "scope": scope,
        }
    )


def _d(
    id_: str,
    node: str,
    at: float,
    to: NodeState,
    action: ActionKind,
    cls: str = "gpu_hardware",
    gpu: int | None = None,
    mode: Mode = Mode.AUTO,
    executable: bool = True,
) -> Decision:
    return Decision(
        id=id_,
        time=_t(at),
        node=node,
        gpu=gpu,
        from_state=S.HEALTHY,
        to_state=to,
        trigger="t",
        failure_class=cls,
        confidence=0.9,
        action=action,
        mode=mode,
        executable=executable,
        reasons=[],
        evidence=[],
        policy_version="test",
    )


LABELS = [
    _label("L1", "n1", 2, "gpu_hardware", "fault", "quarantine", 7200, decisive=True),
    _label("L2", "n2", None, "thermal_power", "fault", "quarantine", None),
    _label("L3", "n3", 0, "thermal_power", "noise", "none", 0),
    _label("L4", "s1", None, "workload_symptom", "storm", "incident", 60, scope={"job": "j"}),
    _label("L5", "s2", None, "workload_symptom", "storm", "incident", 60, scope={"job": "j"}),
]
DECISIONS = [
    _d("d1", "n1", 30, S.SUSPECT, ActionKind.OBSERVE, gpu=2),
    _d("d2", "n1", 60, S.QUARANTINED, ActionKind.GPU_RESET, gpu=2),
    _d("d6", "n1", 70, S.REPAIRING, ActionKind.REBOOT, mode=Mode.RECOMMEND, executable=False),
    _d("d3", "n1", 3 * 3600, S.HEALTHY, ActionKind.RETURN_TO_SERVICE),
    _d("d4", "n3", 10, S.QUARANTINED, ActionKind.DRAIN, cls="thermal_power"),
    _d("d5", "s1", 90, S.ESCALATED, ActionKind.FLEET_INCIDENT, cls="fleet_incident"),
]
INVENTORY = {n: NodeInfo("p", "r1", 8) for n in ("n1", "n2", "n3", "s1", "s2")}


@pytest.fixture(scope="module")
def fig() -> dict[str, Any]:
    return score(LABELS, DECISIONS, INVENTORY, min_healthy=0.9)


def test_precision_recall_and_per_class(fig: dict[str, Any]) -> None:
    assert (fig["quarantines"], fig["true_quarantines"], fig["false_quarantines"]) == (2, 1, 1)
    assert fig["precision"] == 0.5 and fig["recall"] == 0.5 and fig["recall_decisive_hw"] == 1.0
    assert fig["noise_quarantines"] == 1
    hw, th = fig["per_class"]["gpu_hardware"], fig["per_class"]["thermal_power"]
    assert (hw["precision"], hw["recall"]) == (1.0, 1.0)
    assert (th["quarantines"], th["true"], th["precision"], th["faults"], th["recall"]) == (1, 0, 0.0, 1, 0.0)


def test_wrongful_destructive_counts_only_nodes_without_a_fault(fig: dict[str, Any]) -> None:
    assert fig["wrongful_destructive"] == 1  # the drain on the noise node; the reboot of n1 is justified


def test_time_to_detect_and_mttr_exact(fig: dict[str, Any]) -> None:
    assert fig["ttd_s"] == {"count": 1, "mean": 30.0, "median": 30.0, "p95": 30.0, "max": 30.0}
    assert fig["mttr_s"]["median"] == 10800.0 and fig["mttr_s"]["unresolved"] == 0


def test_capacity_peak_and_headroom(fig: dict[str, Any]) -> None:
    # n3 (8) + s1 (8) + n1 (GPU 2, then the whole node for the reboot) = 24 of 40 GPUs at the peak.
    assert fig["capacity"]["p"] == {
        "gpus": 40,
        "max_removed": 24,
        "max_removed_frac": 0.6,
        "min_healthy_frac": 0.4,
        "below_headroom": True,
    }
    assert fig["pools_below_headroom"] == 1


def test_storm_incidents_vs_quarantines(fig: dict[str, Any]) -> None:
    (storm,) = fig["storms"]
    assert storm == {
        "scenario": "hand",
        "scope": "job=j",
        "nodes": 2,
        "incidents": 1,
        "quarantines": 0,
        "drains": 0,
    }


def test_shadow_decisions_remove_no_capacity_and_are_not_wrongful() -> None:
    shadow = _d("s", "n3", 10, S.QUARANTINED, ActionKind.DRAIN, mode=Mode.SHADOW, executable=False)
    fig = score(LABELS, [shadow], INVENTORY)
    assert fig["wrongful_destructive"] == 0 and fig["capacity"]["p"]["max_removed"] == 0
    assert fig["false_quarantines"] == 1  # the judgement still counts against precision


def test_gpu_level_quarantine_of_the_wrong_gpu_is_false() -> None:
    fig = score(LABELS, [_d("w", "n1", 60, S.QUARANTINED, ActionKind.GPU_RESET, gpu=5)])
    assert (fig["true_quarantines"], fig["false_quarantines"]) == (0, 1)


def test_ratio_column() -> None:
    assert ratio(1, 4) == 0.25 and ratio(3, 0) is None and ratio(None, 2) is None
    rows = compare({"false_quarantines": 1}, {"false_quarantines": 20})
    assert rows["false_quarantines"] == {"ours": 1, "naive": 20, "ratio": 0.05}


def test_node_days_incidents_frozen_decisive_faults_and_time_to_first_action() -> None:
    from schemas.decision import GuardCheck

    labels = [
        _label("f1", "a", 1, "gpu_hardware", "fault", "quarantine", 3600, decisive=True),
        _label("f2", "b", 2, "gpu_memory", "fault", "quarantine", 3600, decisive=True),
    ]
    q = _d("q1", "a", 120, S.QUARANTINED, ActionKind.REBOOT, gpu=1)
    back = _d("h1", "a", 7200, S.HEALTHY, ActionKind.RETURN_TO_SERVICE).model_copy(
        update={"from_state": S.VALIDATING}
    )
    frozen = _d("held", "b", 60, S.SUSPECT, ActionKind.GPU_RESET, "gpu_memory", gpu=2).model_copy(
        update={
            "held": True,
            "incident_id": "inc-1",
            "trigger": "decisive_signal",
            "guard": [GuardCheck(name="blast_radius", passed=False, figures={"incident": "inc-1"})],
        }
    )
    incident = _d("inc-1", "c", 50, S.HEALTHY, ActionKind.FLEET_INCIDENT).model_copy(
        update={"incident_id": "inc-1", "from_state": S.HEALTHY}
    )
    suspect = _d("s1", "c", 0, S.SUSPECT, ActionKind.OBSERVE)  # never cleared: out until the end (7200 s)
    fig = score(labels, [q, back, frozen, incident, suspect])
    # a: 120 → 7200 s out; c: 0 → 7200 s (the run's end); b's held decision moved nothing.
    assert fig["node_days_out_of_healthy"] == round((7080 + 7200) / 86_400, 3)
    assert fig["nodes_left_healthy"] == 2
    assert fig["incidents_opened"] == 1
    assert fig["decisive_frozen"] == 1 and fig["decisive_frozen_ids"] == ["f2"]
    assert fig["time_to_first_action_s"]["count"] == 1 and fig["time_to_first_action_s"]["median"] == 120.0
