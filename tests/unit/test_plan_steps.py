"""What one node's step of an operator plan came to, read from the guard's decision and the actuator
stage's results as the store holds them (``breakfix.api.plan_steps.node_outcome``); the workflow
engine's own result vocabulary (``actuators.workflow``: a run's outcome is its ``workflow`` result,
a non-success detail starts with the outcome) is what it reads."""

from __future__ import annotations

from typing import Any

from breakfix.api.plan_steps import current_decision, is_held, node_outcome

EXECUTABLE = {"id": "d-wf-1.n1", "executable": True, "guard_failed": [], "reasons": []}


def result(step: str, status: str, detail: str = "") -> dict[str, Any]:
    return {"step": step, "status": status, "detail": detail}


def test_undecided_and_running_steps_have_no_outcome_yet() -> None:
    assert node_outcome(None, []) is None
    assert node_outcome(EXECUTABLE, [result("started", "in_progress"), result("cordon", "succeeded")]) is None


def test_a_runs_own_result_ends_it() -> None:
    done = [result("cordon", "succeeded"), result("workflow", "succeeded", "playbook done")]
    assert node_outcome(EXECUTABLE, done) == {"status": "succeeded", "detail": "playbook done"}
    escalated = [result("validate", "failed"), result("workflow", "failed", "escalated: diag failed")]
    assert node_outcome(EXECUTABLE, escalated)["status"] == "escalated"  # type: ignore[index]
    odd = [result("workflow", "failed", "something else")]
    assert node_outcome(EXECUTABLE, odd)["status"] == "failed"  # type: ignore[index]
    refused = [result("workflow", "refused", "no approver of role approver")]
    assert node_outcome(EXECUTABLE, refused)["status"] == "rejected"  # type: ignore[index]


def test_a_lever_pauses_a_run_and_the_guard_can_refuse_the_step() -> None:
    paused = [result("cordon", "refused", "kill switch engaged")]
    assert node_outcome(EXECUTABLE, paused) == {"status": "paused", "detail": "kill switch engaged"}
    held = {"id": "d-wf-1.n1", "executable": False, "guard_failed": ["killswitch"], "reasons": ["freeze"]}
    out = node_outcome(held, [])
    assert out is not None and out["status"] == "rejected" and "killswitch" in out["detail"]


def test_a_step_held_for_capacity_waits_and_its_release_or_retirement_answers_it() -> None:
    why = "waiting for capacity (concurrency_rack, headroom): in flight n2 (rack r1, Quarantined)"
    held = {"id": "d-wf-1.n1", "executable": False, "guard_failed": ["concurrency_rack", "headroom"],
            "reasons": [why]}  # fmt: skip
    assert is_held(held) and node_outcome(held, []) is None  # waiting, not rejected
    mixed = {**held, "guard_failed": ["concurrency_rack", "in_flight"]}
    assert not is_held(mixed) and node_outcome(mixed, [])["status"] == "rejected"  # type: ignore[index]
    released = {**EXECUTABLE, "id": "d-wf-1.n1:released"}
    assert current_decision([held, released]) == released and current_decision([held]) == held
    retired = {"id": "d-wf-1.n1:capacity_wait_expired", "executable": False, "guard_failed": [],
               "reasons": ["operator plan step waited 7201s for capacity"]}  # fmt: skip
    assert not is_held(retired)
    out = node_outcome(current_decision([held, retired]), [])
    assert out is not None and out["status"] == "rejected" and "waited 7201s" in out["detail"]
