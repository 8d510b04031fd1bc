"""The node lifecycle: Healthy → Suspect → Quarantined → Repairing → Validating → Healthy, or Escalated.

Each function here returns at most one ``Draft`` (a proposed transition with a named trigger); the
node stage turns it into a Proposal, the guard into exactly one Decision, and ``apply`` moves the node
only when that decision comes back. Nothing loops: failed repairs and validations escalate, a repair
that did not complete never re-triggers automation, and Escalated is left only by people.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from detectors.fusion import Assessment
from policy.model import Policy
from schemas.common import FailureDomain, NodeState
from schemas.decision import ActionKind, Decision
from schemas.events import ActionResult, RepairStatus, TenantReport
from schemas.vocab import ACTIONABLE_ATTRIBUTIONS, FailureClass, Trigger
from schemas.vocab import Attribution as A

H, S, Q, R, V, E = (
    NodeState.HEALTHY,
    NodeState.SUSPECT,
    NodeState.QUARANTINED,
    NodeState.REPAIRING,
    NodeState.VALIDATING,
    NodeState.ESCALATED,
)
IN_FLIGHT = frozenset({Q, R, V})
REPAIR_ACTIONS = frozenset({"gpu_reset", "reboot", "drain", "reimage", "rma", "ticket"})
REPAIR_STARTED = Trigger.REPAIR_STARTED
"""Trigger of Quarantined → Repairing: an actuator reported the repair run ``in_progress``."""
RUN_STEP = "workflow"
"""``step`` of a workflow run's own outcome (its last result); other steps report one step each. A
result with no step ("") is also read as a run's outcome (producers other than the workflow engine)."""
JOB_FAULT = Trigger.JOB_FAULT
EXPIRED = Trigger.EXPIRED_WHILE_WAITING
"""Trigger of a node's withdrawal of its queued proposal once that proposal outlived the stale cutoff,
and of the guard's non-acting decision that retires it."""
TENANT_CATEGORY_DOMAIN = {
    "HARDWARE": FailureDomain.GPU_HARDWARE,
    "NETWORK": FailureDomain.NETWORK,
    "PERFORMANCE": FailureDomain.THERMAL_POWER,
    "OTHER": FailureDomain.NODE_OS,
}


@dataclass
class Life:
    state: NodeState = H
    since: float = 0.0
    pending: str | None = None
    decision_id: str | None = None
    failure_class: str = ""
    gpu: int | None = None
    action: str = "none"
    executable: bool = False
    held_class: str | None = None
    """Failure class of the last proposal the guard held: not re-proposed until the node clears."""
    held_at: float | None = None
    """When the guard queued this node's proposal (capacity or breaker, not an incident freeze). The node
    itself re-judges it once it outlives the stale cutoff, on its own event time, so the retirement is
    the same whether decisions reach the node synchronously (replay) or late (streaming)."""
    quiet_since: float | None = None
    validated_at: float | None = None
    repairs: deque[float] = field(default_factory=lambda: deque(maxlen=16))
    tenant_issue: bool = False
    auto_repaired: bool = False
    job_reported: str | None = None
    """The job whose crash this node last reported as a job-level finding: reported once, never a
    node transition."""


@dataclass(frozen=True)
class Draft:
    to_state: NodeState
    trigger: str
    failure_class: str
    confidence: float
    action: ActionKind
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    evidence_time: float
    gpu: int | None = None
    domain: FailureDomain | None = None
    job: str | None = None
    signal: str | None = None
    """The strongest signal behind it: blast radius counts like with like."""
    decisive: bool = False


def _from(
    a: Assessment, to: NodeState, trigger: str, action: ActionKind | None = None, extra: tuple[str, ...] = ()
) -> Draft:
    return Draft(
        to,
        trigger,
        a.failure_class,
        a.confidence,
        action or a.action,
        (*extra, *a.reasons),
        a.event_ids,
        a.evidence_time,
        a.gpu,
        a.domain,
        a.job,
        a.top_signal,
        a.decisive,
    )


def pick(assessments: list[Assessment]) -> Assessment | None:
    """The assessment that drives the lifecycle: hardware/tenant first, then change, application,
    monitoring - so a silent agent or a buggy job never masks a real fault."""
    order = {A.HARDWARE: 0, A.TENANT: 0, A.CHANGE: 1, A.APPLICATION: 2, A.MONITORING: 3}
    best = sorted(assessments, key=lambda a: (order.get(a.attribution, 4), -a.confidence))
    return best[0] if best else None


def can_act(a: Assessment, policy: Policy, lemon: float) -> bool:
    if a.attribution not in ACTIONABLE_ATTRIBUTIONS or a.action in (ActionKind.NONE, ActionKind.OBSERVE):
        return False
    if a.decisive and a.failure_class in policy.single_signal_classes:
        return True
    threshold = policy.thresholds.act.get(a.action, 1.0)
    discount = min(0.2, lemon * policy.thresholds.lemon_discount_per_repair)
    return a.confidence >= threshold - discount


def _quarantine(life: Life, a: Assessment, policy: Policy, lemon: float, now: float) -> Draft:
    t = policy.thresholds
    recent = [r for r in life.repairs if now - r <= policy.retry_budget.window_s]
    if lemon >= t.lemon_rma_after:
        return _from(
            a,
            E,
            Trigger.REPEAT_OFFENDER,
            ActionKind.RMA,
            (f"lemon score {lemon:.2f} >= {t.lemon_rma_after}: hardware ticket instead of another repair",),
        )
    if len(recent) >= policy.retry_budget.max_repairs:
        return _from(
            a,
            E,
            Trigger.RETRY_BUDGET_EXHAUSTED,
            ActionKind.TICKET,
            (
                f"{len(recent)} repairs in {policy.retry_budget.window_s:.0f}s (budget "
                f"{policy.retry_budget.max_repairs})",
            ),
        )
    return _from(a, Q, Trigger.DECISIVE_SIGNAL if a.decisive else Trigger.CONFIDENCE_OVER_THRESHOLD)


def _job_fault(life: Life, a: Assessment) -> Draft | None:
    """A job's crash, reported once per job by each node it ran on and never as a transition; a node
    whose proposal waits in the guard's queue keeps it (a report would replace it there)."""
    if a.job is None or a.job == life.job_reported or life.held_class is not None:
        return None
    life.job_reported = a.job
    return _from(a, life.state, JOB_FAULT, ActionKind.OBSERVE)


def renewal_due(life: Life, policy: Policy, now: float) -> bool:
    """The node's queued proposal is older than the stale cutoff: it no longer speaks for the node."""
    return life.held_at is not None and now >= life.held_at + policy.stale_cutoff_s


def _renew(life: Life, a: Assessment | None, policy: Policy, lemon: float, now: float) -> Draft:
    """Replace a queued proposal that outlived the stale cutoff: a fresh one if the current evidence still
    crosses the act threshold, else a withdrawal (the guard retires the queued one, moving nothing)."""
    if a is not None and can_act(a, policy, lemon):
        return _quarantine(life, a, policy, lemon, now)
    assert life.held_at is not None
    return Draft(
        life.state,
        EXPIRED,
        life.held_class or life.failure_class,
        0.0 if a is None else a.confidence,
        ActionKind.NONE,
        (
            f"queued proposal outlived the {policy.stale_cutoff_s:.0f}s stale cutoff "
            f"({now - life.held_at:.0f}s) and current evidence no longer crosses the act threshold",
        ),
        (),
        now,
    )


def evaluate(
    life: Life, assessments: list[Assessment], policy: Policy, lemon: float, now: float
) -> Draft | None:
    """Time- and evidence-driven transitions (called when evidence changed or the clock ticked)."""
    t = policy.thresholds
    a = pick(assessments)
    top = max((x.confidence for x in assessments if x.attribution != A.APPLICATION), default=0.0)
    if top < t.exit and (a is None or a.confidence < t.exit):
        life.quiet_since = now if life.quiet_since is None else life.quiet_since
    else:
        life.quiet_since = None
    quiet_for = 0.0 if life.quiet_since is None else now - life.quiet_since
    st = life.state
    if renewal_due(life, policy, now):
        return _renew(life, a, policy, lemon, now)
    if st in (H, S) and a is not None:
        if a.attribution == A.APPLICATION:
            return _job_fault(life, a)
        if can_act(a, policy, lemon) and life.held_class != a.failure_class:
            return _quarantine(life, a, policy, lemon, now)
        if st is H and a.confidence >= t.suspect_enter:
            trigger = {A.CHANGE: Trigger.CHANGE_ATTRIBUTED, A.MONITORING: Trigger.AGENT_SILENT}.get(
                a.attribution, Trigger.EVIDENCE_RISING
            )
            action = ActionKind.OBSERVE if a.attribution == A.HARDWARE else a.action
            return _from(a, S, trigger, action)
    if st is S and life.quiet_since is not None and quiet_for >= t.healthy_hold_s:
        return Draft(
            H,
            Trigger.EVIDENCE_CLEARED,
            life.failure_class,
            top,
            ActionKind.NONE,
            (f"confidence below {t.exit} for {quiet_for:.0f}s",),
            (),
            now,
        )
    if st is Q and not life.executable and life.quiet_since is not None and quiet_for >= t.healthy_hold_s:
        return Draft(
            H,
            Trigger.CLEARED_WITHOUT_ACTION,
            life.failure_class,
            top,
            ActionKind.RETURN_TO_SERVICE,
            (f"recommended action not taken and evidence quiet for {quiet_for:.0f}s",),
            (),
            now,
        )
    if st is V and life.validated_at is not None:
        if (
            a is not None
            and a.attribution == A.HARDWARE
            and can_act(a, policy, lemon)
            and a.evidence_time > life.since
        ):
            return _from(a, E, Trigger.FAULT_RECURRED_DURING_VALIDATION, ActionKind.TICKET)
        if now - life.validated_at >= t.validation_hold_s and top < t.exit:
            return Draft(
                H,
                Trigger.RETURNED_TO_SERVICE,
                life.failure_class,
                top,
                ActionKind.RETURN_TO_SERVICE,
                (f"validation passed and signals quiet for {now - life.validated_at:.0f}s",),
                (),
                now,
            )
    return None


def on_tenant_report(life: Life, ev: TenantReport, policy: Policy, now: float) -> Draft | None:
    """NICo's repair manual: a tenant's issue report takes the machine out of allocation at once."""
    life.tenant_issue = True
    if life.state not in (H, S):
        return None
    action = ActionKind.TICKET
    why = (
        f"tenant reported {ev.data.category} on release of {ev.data.instance_id}: {ev.data.summary}",
        "tenant-reported-issue override applied"
        + (
            "; repair-request applied (auto-repair enabled)"
            if policy.auto_repair_enabled and not life.auto_repaired
            else "; auto-repair disabled or already used: manual repair"
        ),
    )
    return Draft(
        Q,
        Trigger.TENANT_REPORTED_ISSUE,
        FailureClass.TENANT_REPORT,
        1.0,
        action,
        why,
        (ev.id,),
        now,
        domain=TENANT_CATEGORY_DOMAIN[ev.data.category],
    )


def on_repair_status(life: Life, ev: RepairStatus, now: float) -> Draft | None:
    """NICo's repair manual, FAQ: only repair_status == "Completed" returns a machine; anything else (Failed,
    InProgress, missing, unknown) is a failed repair: out-for-repair, never auto-repaired again."""
    if not life.tenant_issue and life.state not in (Q, R):
        return None
    life.auto_repaired = True
    status = ev.data.repair_status
    if status == "Completed":
        life.validated_at = now
        return Draft(
            V,
            Trigger.REPAIR_REPORTED_COMPLETED,
            FailureClass.TENANT_REPORT,
            1.0,
            ActionKind.VALIDATE,
            (f"repair tenant reports Completed: {ev.data.repair_details or 'no details'}",),
            (ev.id,),
            now,
        )
    shown = "missing" if status is None else repr(status)
    return Draft(
        E,
        Trigger.REPAIR_NOT_COMPLETED,
        FailureClass.TENANT_REPORT,
        1.0,
        ActionKind.TICKET,
        (f"repair tenant released the machine with repair_status {shown}: out-for-repair",),
        (ev.id,),
        now,
    )


def on_action_result(life: Life, ev: ActionResult, now: float) -> Draft | None:
    d = ev.data
    if (d.model_extra or {}).get("request_id"):
        # A node agent's answer to one command of a run (its GPU reset, its diag): the workflow
        # engine reports the step and the run's outcome itself, so this moves nothing.
        return None
    if d.decision_id != life.decision_id:
        # Results answer the decision the node is in, Validating's included: a validate result of
        # another decision (an old run's, a replayed or crafted one) neither passes nor fails it.
        return None
    fc, reasons, ids = (
        life.failure_class,
        (f"{d.action}/{d.step or '-'}: {d.status} {d.detail}".strip(),),
        (ev.id,),
    )
    if d.status == "refused" and d.step not in ("", RUN_STEP):
        # A guardrail (kill switch, exclusion) refused one mutating step and the run paused: it
        # resumes where it stopped once the guardrail lifts. A pause is not a failed repair.
        return None
    if d.status in ("failed", "timeout", "refused"):
        if life.state in (Q, R):
            return Draft(E, Trigger.REPAIR_FAILED, fc, 1.0, ActionKind.TICKET, reasons, ids, now, life.gpu)
        if life.state is V:
            return Draft(
                E, Trigger.VALIDATION_FAILED, fc, 1.0, ActionKind.TICKET, reasons, ids, now, life.gpu
            )
        return None
    if life.state is Q and d.status == "in_progress" and d.action in REPAIR_ACTIONS:
        # A record of the transition, not a request for work (the repair already runs): action NONE,
        # so the guard never makes it executable and no actuator starts a second run for it.
        return Draft(R, REPAIR_STARTED, fc, 1.0, ActionKind.NONE, reasons, ids, now, life.gpu)
    if life.state in (Q, R) and d.status == "succeeded" and d.action in REPAIR_ACTIONS:
        return Draft(V, Trigger.REPAIR_COMPLETED, fc, 1.0, ActionKind.VALIDATE, reasons, ids, now, life.gpu)
    if life.state is V and d.action == "validate" and d.status == "succeeded":
        if d.validation == "failed":
            return Draft(
                E, Trigger.VALIDATION_FAILED, fc, 1.0, ActionKind.TICKET, reasons, ids, now, life.gpu
            )
        life.validated_at = now
    return None


def apply(life: Life, decision: Decision, now: float) -> None:
    """Move the node as the guard decided. A held decision leaves the state and remembers the class."""
    if decision.action is ActionKind.FLEET_INCIDENT:
        return
    if decision.trigger == Trigger.OPERATOR_PLAN and not decision.executable:
        # An operator plan's step the guard refused answers the plan, not the node: the node keeps
        # its own decision (a run of it may still report) and its own pending proposal.
        return
    life.pending = None
    if decision.trigger == JOB_FAULT:
        return  # a job-level finding: the node stays where it is
    if decision.held:
        life.held_class = decision.failure_class
        life.held_at = decision.time.timestamp() if decision.incident_id is None else None
        return
    life.held_at = None
    life.state = decision.to_state
    life.since = decision.time.timestamp()
    if decision.trigger != REPAIR_STARTED:
        # Repairing continues the quarantine's run: its results keep carrying that decision's id.
        life.decision_id = decision.id
        life.action = decision.action.value
        life.executable = decision.executable
    life.failure_class = decision.failure_class
    life.gpu = decision.gpu
    life.quiet_since = None
    if decision.to_state in (H, S):
        life.held_class = None
    if decision.to_state is H:
        life.validated_at = None
        life.tenant_issue = False
    if decision.to_state is V and decision.trigger == Trigger.REPAIR_COMPLETED:
        life.repairs.append(now)
        life.validated_at = None
    if decision.trigger == Trigger.REPAIR_REPORTED_COMPLETED:
        life.validated_at = now
