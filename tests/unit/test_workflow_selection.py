"""The engine picks among playbooks whose actuators are registered (one catalog for Kubernetes and
SLURM sites), names what to configure when none can run, reports a run's start before its first
mutating step, and still files the escalation ticket when the node's repair budget is spent."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from actuators.playbooks import load_catalog
from actuators.workflow import Journal, WorkflowEngine, from_decision
from schemas.common import NodeState
from schemas.decision import ActionKind
from tests.fakes.workflow_doubles import RecordingActuator, SwitchSafety, xid79_decision

OPS = {
    "kubernetes": {"cordon", "uncordon", "drain", "drain_gpu", "quarantine_gpu", "return_gpu"},
    "slurm": {"drain", "resume", "reboot", "status"},
    "node_agent": {"gpu_reset", "reboot", "collect_bundle", "cleanup_stale", "dcgm_diag"},
    "validate": {"run"},
    "ticket": {"create"},
}


def engine(
    kinds: list[str], events: list[dict[str, Any]], journal: Journal | None = None, **kw: Any
) -> tuple[WorkflowEngine, dict[str, RecordingActuator]]:
    acts = {k: RecordingActuator(k, OPS[k]) for k in kinds}
    eng = WorkflowEngine(
        load_catalog(), acts.values(), journal or Journal(":memory:"), SwitchSafety(), events.append, **kw
    )
    return eng, acts


def test_the_scheduler_that_is_configured_decides_the_playbook() -> None:
    kube, _ = engine(["kubernetes", "node_agent", "validate"], [])
    slurm, acts = engine(["slurm", "node_agent", "validate"], [])
    assert kube.run(from_decision(xid79_decision())).playbook == "xid-ecc-conditional-drain-gpu-reset"
    outcome = slurm.run(from_decision(xid79_decision()))
    assert outcome.status == "succeeded" and outcome.playbook == "slurm-xid-drain-gpu-reset"
    assert [s for s, _ in acts["slurm"].calls] == ["drain", "resume"]


def test_no_runnable_playbook_names_each_candidates_missing_actuators_with_their_hints() -> None:
    events: list[dict[str, Any]] = []
    hints = {"kubernetes": "add --kube-url", "slurm": "add --slurm", "node_agent": "add --node-agent"}
    eng, acts = engine(["validate", "ticket"], events, unconfigured=hints)
    outcome = eng.run(from_decision(xid79_decision()))
    assert outcome.status == "rejected" and all(not a.calls for a in acts.values())
    assert outcome.detail.startswith("no configured actuators can run a playbook for gpu_hardware/gpu_reset")
    assert (
        "xid-ecc-conditional-drain-gpu-reset needs kubernetes (add --kube-url), node_agent" in outcome.detail
    )
    assert (
        "slurm-xid-drain-gpu-reset needs node_agent (add --node-agent), slurm (add --slurm)" in outcome.detail
    )
    assert events[-1]["data"]["status"] == "refused" and events[-1]["data"]["detail"] == outcome.detail
    unknown = eng.run(from_decision(xid79_decision(decision_id="d2", failure_class="monitoring")))
    assert unknown.detail == "no playbook serves monitoring/gpu_reset"


def test_started_is_reported_once_before_the_first_mutating_step_and_never_when_refused() -> None:
    events: list[dict[str, Any]] = []
    eng, _ = engine(["kubernetes", "node_agent", "validate"], events)
    eng.run(from_decision(xid79_decision()))
    steps = [(e["data"]["step"], e["data"]["status"]) for e in events]
    assert steps[:2] == [("started", "in_progress"), ("cordon", "succeeded")]
    assert steps.count(("started", "in_progress")) == 1
    assert events[0]["data"]["action"] == "gpu_reset"  # the node stage's REPAIR_ACTIONS vocabulary

    refused: list[dict[str, Any]] = []
    blocked, _ = engine(["kubernetes", "node_agent", "validate"], refused)
    blocked.safety = SwitchSafety(killswitch=True)
    assert blocked.run(from_decision(xid79_decision())).status == "paused"
    assert [e["data"]["status"] for e in refused] == ["refused"], "a paused run never went Repairing"


def test_a_spent_retry_budget_still_files_the_escalation_ticket_but_repairs_nothing() -> None:
    journal = Journal(":memory:")
    for n in range(2):
        journal.start_run(f"old{n}", "gpu-node-1", "xid-ecc-conditional-drain-gpu-reset", "1.0", time.time())
        journal.finish_run(f"old{n}", "escalated", "validation failed", time.time())
    eng, acts = engine(["kubernetes", "node_agent", "validate", "ticket"], [], journal)
    repair = eng.run(from_decision(xid79_decision()))
    assert repair.status == "escalated" and "retry budget" in repair.detail and not acts["kubernetes"].calls
    ticket = xid79_decision(
        decision_id="dec-ticket",
        from_state=NodeState.VALIDATING,
        to_state=NodeState.ESCALATED,
        action=ActionKind.TICKET,
    )
    # As the dispatcher does: the playbook starts from the state the decision moved the node to.
    outcome = eng.run(replace(from_decision(ticket), from_state=ticket.to_state.value))
    assert outcome.status == "succeeded" and outcome.playbook == "gpu-hardware-escalation-ticket"
    assert acts["ticket"].calls == [("ticket", "create")]
    assert acts["node_agent"].calls == [("collect", "collect_bundle")]


def test_a_decisive_quarantine_straight_from_healthy_runs_on_kubernetes_and_on_slurm() -> None:
    """Decisive evidence (single-signal classes) moves a node Healthy -> Quarantined in one decision,
    and the shipped policy picks reboot or gpu_reset for it: every node-level repair playbook must
    accept that start, or the repair is refused and the node escalated for nothing."""
    for action in (ActionKind.REBOOT, ActionKind.GPU_RESET):
        decision = xid79_decision(
            decision_id=f"dec-healthy-{action.value}", from_state=NodeState.HEALTHY, action=action
        )
        for kinds in (["kubernetes", "node_agent", "validate"], ["slurm", "node_agent", "validate"]):
            eng, _ = engine(kinds, [])
            outcome = eng.run(from_decision(decision))
            assert outcome.status == "succeeded", (action, kinds, outcome.playbook, outcome.detail)
