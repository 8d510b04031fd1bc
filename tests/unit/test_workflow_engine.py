"""The workflow engine with recording actuators: gates, retries, timeouts, rollback, budget, resume."""

from __future__ import annotations

import time
from typing import Any

import pytest

from actuators.base import Escalate, PermanentError, StepContext, StepResult, StepSpec, TemporaryError
from actuators.playbooks import load_catalog
from actuators.workflow import (
    Approver,
    Journal,
    NotExecutable,
    RetryBudget,
    WorkflowEngine,
    WorkRequest,
    from_decision,
)
from schemas.events import ActionResult
from tests.fakes.workflow_doubles import OPS, RecordingActuator, SwitchSafety, xid79_decision


class Rig:
    def __init__(self, behaviours: dict[str, dict[str, Any]] | None = None, **engine_kw: Any) -> None:
        self.actuators = {k: RecordingActuator(k, ops, (behaviours or {}).get(k)) for k, ops in OPS.items()}
        self.events: list[dict[str, Any]] = []
        self.safety = SwitchSafety()
        self.journal = Journal(":memory:")
        self.catalog = load_catalog()
        self.engine = WorkflowEngine(
            self.catalog,
            self.actuators.values(),
            self.journal,
            self.safety,
            self.events.append,
            sleep=lambda s: None,
            **engine_kw,
        )

    def calls(self, kind: str) -> list[str]:
        return [s for s, _ in self.actuators[kind].calls]

    def shorten(self, playbook: str, step: str, timeout_s: float) -> None:
        pb = self.catalog.get(playbook)
        steps = [s.model_copy(update={"timeout_s": timeout_s}) if s.name == step else s for s in pb.steps]
        self.catalog.playbooks[playbook] = pb.model_copy(update={"steps": steps})


def fail_with(err: Exception) -> Any:
    def run(step: StepSpec, ctx: StepContext) -> StepResult:
        raise err

    return run


@pytest.mark.parametrize(
    ("over", "why"),
    [({"executable": False}, "not executable"), ({"replay": True}, "replay"), ({"stale": True}, "stale")],
)
def test_only_executable_live_decisions_become_work(over: dict[str, Any], why: str) -> None:
    with pytest.raises(NotExecutable, match=why):
        from_decision(xid79_decision(**over))


def test_happy_path_emits_a_valid_action_result_per_step() -> None:
    rig = Rig()
    outcome = rig.engine.run(from_decision(xid79_decision()))
    assert outcome.status == "succeeded"
    assert rig.calls("kubernetes") == ["cordon", "drain", "uncordon"]
    for event in rig.events:
        ActionResult.model_validate(event)
    # The run reports in_progress before its first mutating step (the node goes Repairing).
    assert [e["data"]["step"] for e in rig.events] == ["started", *outcome.executed, "workflow"]
    assert rig.events[0]["data"]["status"] == "in_progress"
    assert len({e["id"] for e in rig.events}) == len(rig.events)


def test_temporary_errors_retry_within_budget() -> None:
    failures = iter([TemporaryError("503", 0.01), TemporaryError("503", 0.01)])

    def flaky(step: StepSpec, ctx: StepContext) -> StepResult:
        err = next(failures, None)
        if err:
            raise err
        return StepResult(detail="reset")

    rig = Rig({"node_agent": {"gpu_reset": flaky}})
    assert rig.engine.run(from_decision(xid79_decision())).status == "succeeded"
    assert rig.calls("node_agent") == ["gpu-reset"] * 3


def test_a_hung_step_times_out_and_escalates() -> None:
    rig = Rig({"node_agent": {"gpu_reset": lambda s, c: time.sleep(5) or StepResult()}})
    rig.shorten("xid-ecc-conditional-drain-gpu-reset", "gpu-reset", 0.2)
    started = time.monotonic()
    outcome = rig.engine.run(from_decision(xid79_decision()))
    assert outcome.status == "escalated" and "budget" in outcome.detail
    assert time.monotonic() - started < 3
    assert ("gpu-reset", "timeout") in [(e["data"]["step"], e["data"]["status"]) for e in rig.events]
    assert rig.calls("validate") == [] and "uncordon" not in rig.calls("kubernetes")


def test_failed_validation_escalates_and_keeps_the_quarantine() -> None:
    rig = Rig(
        {"validate": {"run": lambda s, c: StepResult(detail="dcgm diag L2 failed", validation="failed")}}
    )
    outcome = rig.engine.run(from_decision(xid79_decision()))
    assert outcome.status == "escalated" and "validation failed" in outcome.detail
    assert "uncordon" not in rig.calls("kubernetes")
    assert any(e["data"]["validation"] == "failed" for e in rig.events)


def cleanup_request(**over: Any) -> WorkRequest:
    fields: dict[str, Any] = dict(
        decision_id="d-clean",
        node="n1",
        failure_class="container_runtime",
        action="reimage",
        from_state="Quarantined",
        playbook="stale-compute-cleanup",
        approvers=(Approver("ann", "approver"),),
    )
    fields.update(over)
    return WorkRequest(**fields)


class Facts:
    def __init__(self, jobs: int | None) -> None:
        self.jobs = jobs

    def active_jobs(self, node: str) -> int | None:
        return self.jobs


def test_permanent_failure_runs_rollback_then_escalates() -> None:
    rig = Rig({"node_agent": {"cleanup_stale": fail_with(PermanentError("rm failed"))}}, facts=Facts(0))
    outcome = rig.engine.run(cleanup_request())
    assert outcome.status == "escalated"
    assert rig.calls("kubernetes") == ["cordon", "rollback-uncordon"]


def test_escalate_keeps_quarantine_without_rollback() -> None:
    rig = Rig({"node_agent": {"cleanup_stale": fail_with(Escalate("needs a person"))}}, facts=Facts(0))
    assert rig.engine.run(cleanup_request()).status == "escalated"
    assert rig.calls("kubernetes") == ["cordon"]


@pytest.mark.parametrize(
    ("request_over", "jobs", "why"),
    [
        ({"approvers": ()}, 0, "approval required"),
        ({"approvers": (Approver("bob", "viewer"),)}, 0, "approval required"),
        ({}, 2, "active jobs"),
        ({}, None, "active jobs"),  # unknown is never zero
        ({"from_state": "Healthy"}, 0, "node state"),
    ],
)
def test_preconditions_and_approval_reject_before_anything_runs(
    request_over: dict[str, Any], jobs: int | None, why: str
) -> None:
    rig = Rig(facts=Facts(jobs))
    outcome = rig.engine.run(cleanup_request(**request_over))
    assert outcome.status == "rejected" and why in outcome.detail
    assert all(a.calls == [] for a in rig.actuators.values())
    assert rig.events[-1]["data"]["status"] == "refused"


def test_headroom_unknown_rejects_node_playbooks() -> None:
    rig = Rig()
    decision = xid79_decision(guard=[])
    assert rig.engine.run(from_decision(decision)).status == "rejected"


def test_retry_budget_then_escalation_without_acting() -> None:
    rig = Rig({"node_agent": {"gpu_reset": fail_with(PermanentError("no"))}}, budget=RetryBudget(2, 3600))
    for i in range(2):
        assert rig.engine.run(from_decision(xid79_decision(decision_id=f"d{i}"))).status == "escalated"
    before = len(rig.actuators["kubernetes"].calls)
    outcome = rig.engine.run(from_decision(xid79_decision(decision_id="d3")))
    assert outcome.status == "escalated" and "retry budget" in outcome.detail
    assert len(rig.actuators["kubernetes"].calls) == before


def test_killswitch_pauses_and_a_later_run_resumes_where_it_stopped() -> None:
    rig = Rig()
    rig.safety.flip_after = 4  # engine+actuator checks for cordon and drain pass, then the switch is on
    paused = rig.engine.run(from_decision(xid79_decision()))
    assert paused.status == "paused" and rig.calls("node_agent") == []
    rig.safety.flip_after, rig.safety.killswitch = None, False
    resumed = rig.engine.run(from_decision(xid79_decision()))
    assert resumed.status == "succeeded"
    assert rig.calls("kubernetes") == ["cordon", "drain", "uncordon"]  # nothing repeated


def test_pool_killswitch_and_exclusion_refuse() -> None:
    rig = Rig()
    rig.safety.killed_pools.add("train")
    assert rig.engine.run(from_decision(xid79_decision(), pool="train")).status == "paused"
    rig2 = Rig()
    rig2.safety.excluded_nodes.add("gpu-node-1")
    outcome = rig2.engine.run(from_decision(xid79_decision()))
    assert outcome.status == "paused" and "excluded" in outcome.detail
    assert rig.calls("kubernetes") == [] and rig2.calls("kubernetes") == []


def test_unsupported_operation_is_refused_at_construction() -> None:
    actuators = [RecordingActuator(k, ops - {"drain"}) for k, ops in OPS.items()]
    with pytest.raises(ValueError, match="drain"):
        WorkflowEngine(load_catalog(), actuators, Journal(":memory:"), SwitchSafety(), lambda e: None)


def test_throughput_figure() -> None:
    """Engine overhead per step with no-op actuators (journal in memory): printed for the docs."""
    rig = Rig()
    started = time.perf_counter()
    runs = 50
    for i in range(runs):
        rig.engine.run(from_decision(xid79_decision(decision_id=f"t{i}")))
    elapsed = time.perf_counter() - started
    steps_per_s = runs * 5 / elapsed
    print(f"workflow engine: {steps_per_s:.0f} steps/s")
    assert steps_per_s > 50
