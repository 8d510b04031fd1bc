"""What the engine runs: a work request built from an executable decision or an operator's plan."""

from __future__ import annotations

from dataclasses import dataclass

from actuators.playbooks import Approval
from schemas.decision import Decision
from schemas.vocab import Trigger


@dataclass(frozen=True)
class Approver:
    """A person who approved the plan (from the control topic's approval messages)."""

    actor: str
    role: str


@dataclass(frozen=True)
class WorkRequest:
    """``playbook`` names one explicitly (an operator's plan); otherwise the catalog selects it.
    ``headroom_ok`` is the guard's headroom verdict, None when unknown (a precondition then fails)."""

    decision_id: str
    node: str
    failure_class: str
    action: str
    from_state: str
    gpu: int | None = None
    pool: str | None = None
    playbook: str | None = None
    approvers: tuple[Approver, ...] = ()
    reasons: tuple[str, ...] = ()
    headroom_ok: bool | None = None
    initiator: str = "automation"


class NotExecutable(ValueError):
    """The decision may not act: the guard did not make it executable, it is stale, or a replay."""


def from_decision(
    decision: Decision, pool: str | None = None, approvers: tuple[Approver, ...] = ()
) -> WorkRequest:
    """A request for an executable decision; shadow, recommend-only, stale and replayed decisions are
    refused here so no code path can hand them to an actuator."""
    if decision.replay:
        raise NotExecutable(f"decision {decision.id} comes from a replay and never acts")
    if decision.stale:
        raise NotExecutable(f"decision {decision.id} is stale and never acts")
    if not decision.executable:
        raise NotExecutable(f"decision {decision.id} is not executable (mode {decision.mode.value})")
    headroom = [g.passed for g in decision.guard if g.name == "headroom"]
    return WorkRequest(
        decision_id=decision.id,
        node=decision.node,
        failure_class=decision.failure_class,
        action=decision.action.value,
        from_state=decision.from_state.value,
        gpu=decision.gpu,
        pool=pool,
        playbook=decision.playbook,
        approvers=(*approvers, *(Approver(a.actor, a.role) for a in decision.approvers)),
        reasons=tuple(decision.reasons),
        headroom_ok=all(headroom) if headroom else None,
        initiator="human" if decision.trigger == Trigger.OPERATOR_PLAN else "automation",
    )


def approval_met(approval: Approval, node: str, approvers: tuple[Approver, ...]) -> bool:
    """Whether the playbook's approval requirement holds for this node and these approvers.

    >>> two = Approval(kind="two_person", role="approver")
    >>> approval_met(two, "n1", (Approver("ann", "approver"), Approver("ann", "approver")))
    False
    >>> approval_met(two, "n1", (Approver("ann", "approver"), Approver("bob", "approver")))
    True
    """
    qualified = {a.actor for a in approvers if approval.role is None or a.role == approval.role}
    if approval.kind == "none":
        return True
    if approval.kind == "canary_list" and node in approval.canary_nodes:
        return True
    if approval.kind == "two_person":
        return len(qualified) >= 2
    return len(qualified) >= 1
