"""Nodes pass through Repairing: the actuator's ``in_progress`` result moves Quarantined → Repairing
(a record, never work), and the run's final result, still carrying the quarantine's decision id,
moves Repairing → Validating or Escalated. Offline replay with simulated actuators shows the same
path the streaming pipeline takes with the workflow engine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from policy.lifecycle import REPAIR_STARTED, Life, apply, on_action_result
from policy.model import load_policy
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from schemas.events import ActionResult
from schemas.parse import validate_event_dict
from sim.replay import OfflineReplay
from sim.simulator.actuators import SimulatedActuators
from tests.builders import T0, inventory, sample, xid

Q, R, V, E = NodeState.QUARANTINED, NodeState.REPAIRING, NodeState.VALIDATING, NodeState.ESCALATED


def _result(decision_id: str, status: str, t: float, action: str = "gpu_reset", **extra: str) -> ActionResult:
    ev = validate_event_dict(
        {
            "id": f"{decision_id}/workflow:{status}",
            "type": "action.result",
            "source": "breakfix.workflow",
            "time": datetime.fromtimestamp(T0 + t, UTC).isoformat(),
            "node": "n1",
            "data": {
                "decision_id": decision_id,
                "action": action,
                "step": "workflow",
                "status": status,
                **extra,
            },
        }
    )
    assert isinstance(ev, ActionResult)
    return ev


def _decision(
    did: str, frm: NodeState, to: NodeState, trigger: str, action: ActionKind, t: float
) -> Decision:
    return Decision(
        id=did,
        time=datetime.fromtimestamp(T0 + t, UTC),
        node="n1",
        gpu=3,
        from_state=frm,
        to_state=to,
        trigger=trigger,
        failure_class="gpu_hardware",
        confidence=1.0,
        action=action,
        mode=Mode.AUTO,
        executable=action is not ActionKind.NONE,
        reasons=["test"],
        evidence=[],
        guard=[],
        policy_version="test",
    )


def test_in_progress_moves_to_repairing_and_the_run_keeps_its_decision_id() -> None:
    life = Life()
    apply(life, _decision("dq", NodeState.HEALTHY, Q, "decisive_signal", ActionKind.GPU_RESET, 0), T0)
    draft = on_action_result(life, _result("dq", "in_progress", 1), T0 + 1)
    assert draft is not None and draft.to_state is R and draft.trigger == REPAIR_STARTED
    assert draft.action is ActionKind.NONE, "Repairing records the running repair; it asks for no work"
    apply(life, _decision("dr", Q, R, REPAIR_STARTED, ActionKind.NONE, 1), T0 + 1)
    assert life.state is R and life.decision_id == "dq" and life.executable
    assert on_action_result(life, _result("dr", "failed", 2), T0 + 2) is None, "not the run's id"
    # The node agent's answer to the run's GPU reset command is one step, not the run's outcome.
    agent = _result("dq", "succeeded", 2, request_id="dq/gpu-reset")
    assert on_action_result(life, agent, T0 + 2) is None
    done = on_action_result(life, _result("dq", "succeeded", 3), T0 + 3)
    assert done is not None and done.to_state is V and done.trigger == "repair_completed"


def test_a_failed_run_escalates_from_repairing() -> None:
    life = Life()
    apply(life, _decision("dq", NodeState.HEALTHY, Q, "decisive_signal", ActionKind.GPU_RESET, 0), T0)
    apply(life, _decision("dr", Q, R, REPAIR_STARTED, ActionKind.NONE, 1), T0 + 1)
    failed = on_action_result(life, _result("dq", "failed", 2), T0 + 2)
    assert failed is not None and failed.to_state is E and failed.trigger == "repair_failed"
    assert on_action_result(life, _result("dq", "in_progress", 2), T0 + 2) is None, "only from Quarantined"


def test_offline_replay_passes_through_repairing(tmp_path: Path) -> None:
    nodes = [f"n{i}" for i in range(1, 9)]  # one node of eight out keeps the pool's 85% headroom
    events = [inventory(n, rack=f"r{n}") for n in nodes]
    events += [sample(n, 15 * k) for k in range(1, 240) for n in nodes]
    events.append(xid("n1", 600.5, 79, gpu=3))
    events.sort(key=lambda e: e.time)
    rec = tmp_path / "rec.jsonl"
    rec.write_bytes(b"".join(e.model_dump_json().encode() + b"\n" for e in events))
    acts = SimulatedActuators(failure_probability=0.0, follow_recommendations=True, operator_delay_s=60)
    replay = OfflineReplay(load_policy(), acts)  # the default policy recommends: an operator acts
    path = [
        (o.decision.from_state, o.decision.to_state, o.decision.trigger, o.decision.executable)
        for o in replay.run(rec)
        if o.decision is not None and o.decision.node == "n1"
    ]
    moves = [(a, b) for a, b, _, _ in path]
    assert moves[:3] == [(NodeState.HEALTHY, Q), (Q, R), (R, V)], path
    assert path[1][2] == REPAIR_STARTED and path[1][3] is False, "Repairing is never executable"
    assert path[2][2] == "repair_completed"
