"""The actuator stage counts a person's approval of a held decision for the decision the guard
releases after it (``<held id>:released``), and only for that decision, class and action, in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.control import ControlMessage
from schemas.decision import ActionKind, Mode
from streams.actuation.stage import ControlState
from tests.fakes.workflow_doubles import xid79_decision


def _approval(decision_id: str, action: str, expires: datetime) -> ControlMessage:
    return ControlMessage.model_validate({
        "id": "ctl-1", "time": datetime.now(UTC), "kind": "approval", "scope": f"decision:{decision_id}",
        "value": {"node": "gpu-node-1", "failure_class": "gpu_hardware", "action": action, "approved": True,
                  "expires_at": expires.isoformat()},
        "actor": "alice", "role": "approver",
    })  # fmt: skip


def test_the_released_decision_carries_the_held_decisions_approval() -> None:
    state = ControlState()
    state.apply(_approval("d-p1", "reboot", datetime.now(UTC) + timedelta(minutes=30)))
    released = xid79_decision(decision_id="d-p1:released", action=ActionKind.REBOOT, mode=Mode.AUTO)
    assert state.approvers(released) == (("alice", "approver"),)
    other = xid79_decision(decision_id="d-p2:released", action=ActionKind.REBOOT, mode=Mode.AUTO)
    assert state.approvers(other) == ()
    wrong_action = xid79_decision(decision_id="d-p1:released", action=ActionKind.REIMAGE, mode=Mode.AUTO)
    assert state.approvers(wrong_action) == ()


def test_an_expired_approval_counts_for_nothing() -> None:
    state = ControlState()
    state.apply(_approval("d-p1", "reboot", datetime.now(UTC) - timedelta(seconds=1)))
    released = xid79_decision(decision_id="d-p1:released", action=ActionKind.REBOOT, mode=Mode.AUTO)
    assert state.approvers(released) == ()
