"""An approved plan as the guard receives it: one signed operator proposal per node, and what each
node's step came to, read back from the guard's decision and the actuator stage's results.

The API runs no actuator. It asks the guard, on the proposals topic (header ``breakfix-kind:
operator``, sealed with the API's key), to decide each node's step with its own guardrails and its
own record of the fleet; the guard's signed decision names the playbook and the approvers, and the
actuator stage runs it. What happened comes back through the store like every decision and action:
:func:`node_outcome` reads one node's step from those rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from breakfix.api.plans import Plan
from policy.guardrails import capacity_only
from schemas.decision import ActionKind
from schemas.proposal import OperatorProposal, Placement, PlanApprover
from schemas.vocab import FailureClass

OPERATOR_KIND = b"operator"
"""``breakfix-kind`` header of an operator plan step on the proposals topic (the guard's shell)."""

FINAL = ("succeeded", "failed", "escalated", "rejected", "skipped")
"""Node outcomes that end its part of a workflow (``paused`` does not: a lifted lever resumes it)."""


def step_id(workflow_id: str, node: str) -> str:
    """The step's id; the guard's decision for it is ``d-`` + this (``policy.guard.decision_id``)."""
    return f"{workflow_id}.{node}"


def decision_id(workflow_id: str, node: str) -> str:
    return "d-" + step_id(workflow_id, node)


RELEASED = ":released"
"""Suffix of the guard's decision releasing a step it held for capacity (``policy.guard``)."""
RETIRED = ":capacity_wait_expired"
"""Suffix of the guard's decision retiring a held step that waited past the policy's ``max_wait_s``."""


def decision_ids(workflow_id: str, node: str) -> tuple[str, str, str]:
    """Every decision the guard may record for a step: its first judgement (held or final), the
    release of a held step, and the retirement of one that waited too long."""
    first = decision_id(workflow_id, node)
    return first, first + RELEASED, first + RETIRED


def current_decision(rows: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The decision that answers a step now: a release or retirement over the first judgement."""
    first = later = None
    for row in rows:
        if str(row["id"]).endswith((RELEASED, RETIRED)):
            later = row
        else:
            first = row
    return later or first


def is_held(decision: Mapping[str, Any] | None) -> bool:
    """A step the guard holds for capacity alone: it waits in the guard's queue, not refused (the
    guard's own rule, ``policy.guardrails.capacity_only``, over the guardrails its decision failed)."""
    return (
        decision is not None
        and not decision.get("executable")
        and not str(decision["id"]).endswith((RELEASED, RETIRED))
        and capacity_only(list(decision.get("guard_failed") or []))
    )


def operator_steps(
    plan: Plan,
    workflow_id: str,
    approvers: Iterable[tuple[str, str]],
    requested_by: str,
    at: datetime,
    nodes: Iterable[str],
) -> list[OperatorProposal]:
    """The steps of ``plan`` for ``nodes`` (its planned nodes, in plan order). The placement is the
    plan's view; the guard uses its own record of a node it knows."""
    wanted = set(nodes)
    people = [PlanApprover(actor=actor, role=role) for actor, role in approvers]
    return [
        OperatorProposal(
            id=step_id(workflow_id, n.node),
            time=at,
            node=n.node,
            gpu=n.gpu,
            failure_class=FailureClass(plan.failure_class).value,
            action=ActionKind(n.action),
            playbook=n.playbook,
            plan_id=plan.id,
            workflow_id=workflow_id,
            requested_by=requested_by,
            approvers=people,
            placement=Placement(pool=n.pool, rack=n.rack, sku=n.sku, gpus=n.gpus),
        )
        for n in plan.nodes
        if n.node in wanted
    ]


def node_outcome(
    decision: Mapping[str, Any] | None, results: Iterable[Mapping[str, Any]]
) -> dict[str, str] | None:
    """What one node's step came to, or None while it is undecided or running.

    ``decision``: the guard's decision row for the step; ``results``: the actuator stage's
    ``action.result`` rows for it, oldest first. A run's own outcome (step ``workflow``) is final; a
    step refused by a lever is ``paused`` (the guard re-issues the decision when the lever lifts);
    a decision the guard refused is ``rejected`` with the guardrails that refused it; one it holds
    for capacity is still undecided (:func:`is_held`)."""
    rows = list(results)
    run = [r for r in rows if r.get("step") == "workflow"]
    if run:
        last = run[-1]
        detail = str(last.get("detail") or "")
        if last.get("status") == "succeeded":
            return {"status": "succeeded", "detail": detail}
        if last.get("status") == "refused":
            return {"status": "rejected", "detail": detail}
        head = detail.split(":", 1)[0]
        return {"status": head if head in FINAL else "failed", "detail": detail}
    if any(r.get("status") == "refused" for r in rows):
        refused = next(r for r in reversed(rows) if r.get("status") == "refused")
        return {"status": "paused", "detail": str(refused.get("detail") or "")}
    if decision is not None and not decision.get("executable") and not is_held(decision):
        failed = ", ".join(decision.get("guard_failed") or []) or "no guardrail named"
        reasons = decision.get("reasons") or []
        why = f": {reasons[0]}" if reasons else ""
        return {"status": "rejected", "detail": f"the guard refused the step ({failed}){why}"}
    return None
