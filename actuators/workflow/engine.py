"""The workflow engine: runs one playbook for one decision, step by step, bounded, resumable, audited.

Where this sits: a decision the guard made executable (or an operator's approved plan) arrives as a
:class:`~actuators.workflow.request.WorkRequest`; the engine picks the playbook, checks its
preconditions, approval and the node's retry budget once, then hands each step to the actuator
registered for its kind. Before every mutating step it re-checks the kill switch and exclusions (the
actuator checks again at the very last moment). Each step's outcome is emitted as an
``action.result`` event and journaled, in that order, so a crash re-emits a duplicate (same event id)
rather than losing one, and a resumed run skips every step the journal says succeeded.

Failure handling follows the exception vocabulary of actuators/base.py: a TemporaryError is retried
within the step's timeout; a PermanentError, a timeout or a failed validation runs the rollback steps
and escalates; an Escalate escalates keeping the quarantine (rollback only when the playbook says
``rollback_on_escalation``); a Refused pauses the run without rolling anything back, and a later
``run`` of the same decision resumes it. Nothing retries forever: a node whose runs escalated
``budget.max_escalations`` times within ``budget.window_s`` is escalated without repairing (a
read-only playbook, such as the escalation ticket, still runs: it is the escalation).

Selection only considers playbooks whose actuators are all registered, so one catalog serves a
Kubernetes site and a SLURM site alike. When none is runnable the request is rejected before any
step with a message naming, per candidate playbook, the missing actuators and how to configure them
(``unconfigured`` hints from the wiring, e.g. "--kube-url URL or --kubeconfig FILE").

Right before the first mutating step the engine emits a ``started`` result with status
``in_progress`` (the decision's action), which the node stage turns into Quarantined → Repairing;
the run's final ``workflow`` result then moves the node on (Validating or Escalated).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from actuators.base import (
    Actuator,
    Escalate,
    PermanentError,
    Refused,
    Safety,
    StepContext,
    StepResult,
    StepSpec,
    TemporaryError,
    ensure_allowed,
)
from actuators.metrics import STEP_SECONDS
from actuators.playbooks import Catalog, Playbook
from actuators.workflow.journal import TERMINAL, Journal, StepRecord
from actuators.workflow.request import WorkRequest, approval_met
from actuators.workflow.results import Emitter, action_result
from policy.lifecycle import RUN_STEP
from schemas.events import ActionStatus

# Extra time a step's thread gets past its deadline to raise its own timeout error before the engine
# gives up on it (actuators are asked to honour ctx.deadline themselves).
_GRACE_S = 1.0

OutcomeStatus = Literal["succeeded", "escalated", "paused", "rejected"]
STARTED = "started"
"""Step name of the run's ``in_progress`` result (the run's outcome is step ``workflow``)."""


class NodeFacts(Protocol):
    """Live facts preconditions need, from the scheduler (Kubernetes or SLURM collectors)."""

    def active_jobs(self, node: str) -> int | None:
        """Jobs or GPU pods running on the node; None when unknown (unknown is never zero)."""
        ...


@dataclass(frozen=True)
class RetryBudget:
    max_escalations: int = 2
    window_s: float = 7 * 86_400


@dataclass(frozen=True)
class Outcome:
    decision_id: str
    status: OutcomeStatus
    playbook: str | None
    detail: str
    executed: tuple[str, ...] = ()  # steps whose actuator was called by this ``run`` call


class _StepFailed(Exception):
    def __init__(self, detail: str, keep_quarantine: bool) -> None:
        super().__init__(detail)
        self.detail, self.keep_quarantine = detail, keep_quarantine


class _StepTimeout(Exception):
    pass


@dataclass
class _Run:
    """Per-``run`` working state: the request, its playbook, earlier outputs, the steps called."""

    req: WorkRequest
    pb: Playbook
    approved: bool
    done: dict[str, StepRecord]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    started: bool = False
    """Whether the run's ``in_progress`` result was emitted (or a mutating step already ran)."""


class WorkflowEngine:
    def __init__(
        self,
        catalog: Catalog,
        actuators: Iterable[Actuator],
        journal: Journal,
        safety: Safety,
        emit: Emitter,
        facts: NodeFacts | None = None,
        budget: RetryBudget | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        unconfigured: Mapping[str, str] | None = None,
    ) -> None:
        """``unconfigured``: actuator kind → how to configure it, quoted when a playbook needs it."""
        self.catalog, self.journal, self.safety, self.emit = catalog, journal, safety, emit
        self.actuators = {a.name: a for a in actuators}
        problems = catalog.unsupported(self.actuators)
        if problems:
            raise ValueError("playbooks use operations their actuators lack: " + "; ".join(problems))
        self.facts, self.budget = facts, budget or RetryBudget()
        self._now, self._sleep = now, sleep
        self.unconfigured = dict(unconfigured or {})

    # --- entry point ------------------------------------------------------------------------------

    def run(self, req: WorkRequest) -> Outcome:
        """Run (or resume) the workflow for ``req.decision_id``; a finished one returns its record."""
        prior = self.journal.run(req.decision_id)
        if prior and prior.status in TERMINAL:
            return Outcome(req.decision_id, prior.status, prior.playbook, prior.detail)  # type: ignore[arg-type]
        pb = self.catalog.get(prior.playbook) if prior else self._choose(req)
        if pb is None:
            return self._reject(req, None, self._none_runnable(req))
        if prior is None:
            problem = self._precheck(pb, req)
            if problem:
                return self._reject(req, pb, problem)
            if pb.mutating and self._budget_spent(req.node):
                self.journal.start_run(req.decision_id, req.node, pb.name, pb.version, time.time())
                return self._finish(req, pb, "escalated", "node's retry budget is spent; needs a person", [])
        self.journal.start_run(req.decision_id, req.node, pb.name, pb.version, time.time())
        run = _Run(req, pb, pb.approval.kind != "none", self.journal.steps(req.decision_id))
        try:
            for step in pb.steps:
                self._step(run, step, "main")
        except Refused as err:
            self.journal.finish_run(req.decision_id, "paused", err.detail, time.time())
            return Outcome(req.decision_id, "paused", pb.name, err.detail, tuple(run.executed))
        except _StepFailed as failure:
            if pb.rollback and (not failure.keep_quarantine or pb.rollback_on_escalation):
                self._rollback(run)
            return self._finish(req, pb, "escalated", failure.detail, run.executed)
        return self._finish(req, pb, "succeeded", "", run.executed)

    # --- selection and checks -------------------------------------------------------------------

    def _choose(self, req: WorkRequest) -> Playbook | None:
        if req.playbook:
            return self.catalog.get(req.playbook)
        return self.runnable.select(req.failure_class, req.action, req.gpu)

    @property
    def runnable(self) -> Catalog:
        """The playbooks every actuator of which is registered: the ones selection picks from."""
        return Catalog(p for p in self.catalog.playbooks.values() if not self._missing(p))

    def _missing(self, pb: Playbook) -> list[str]:
        return sorted({s.actuator for s in [*pb.steps, *pb.rollback]} - set(self.actuators))

    def _needs(self, pb: Playbook) -> str:
        """ "<playbook> needs <kind> (<how to configure it>), ..." for its unregistered actuators."""
        kinds = [f"{k} ({self.unconfigured[k]})" if k in self.unconfigured else k for k in self._missing(pb)]
        return f"playbook {pb.name} needs {', '.join(kinds)}"

    def _none_runnable(self, req: WorkRequest) -> str:
        """Why no playbook was selected: none serves the request, or those that do lack actuators."""
        serving = [
            p
            for p in self.catalog.playbooks.values()
            if Catalog([p]).select(req.failure_class, req.action, req.gpu) is not None
        ]
        what = f"{req.failure_class}/{req.action}"
        if not serving:
            return f"no playbook serves {what}"
        needs = "; ".join(self._needs(p) for p in sorted(serving, key=lambda p: p.name))
        return f"no configured actuators can run a playbook for {what}: {needs}"

    def _precheck(self, pb: Playbook, req: WorkRequest) -> str:
        """Why the playbook may not start, or "" when it may."""
        pre = pb.preconditions
        if self._missing(pb):
            return f"actuator not configured: {self._needs(pb)}"
        if req.from_state not in pre.from_states:
            return f"node state {req.from_state} not in {[s.value for s in pre.from_states]}"
        if pb.scope == "gpu" and req.gpu is None:
            return "per-GPU playbook but the request names no GPU"
        if pre.headroom and req.headroom_ok is not True:
            return f"pool headroom not confirmed by the guard (headroom_ok={req.headroom_ok})"
        if pre.max_active_jobs is not None:
            jobs = self.facts.active_jobs(req.node) if self.facts else None
            if jobs is None or jobs > pre.max_active_jobs:
                return f"active jobs {jobs} exceed the playbook's limit {pre.max_active_jobs}"
        if not approval_met(pb.approval, req.node, req.approvers):
            return f"approval required: {pb.approval.kind} (role {pb.approval.role})"
        return ""

    def _budget_spent(self, node: str) -> bool:
        since = time.time() - self.budget.window_s
        return self.journal.failed_runs(node, since) >= self.budget.max_escalations

    # --- steps ------------------------------------------------------------------------------------

    def _step(self, run: _Run, step: StepSpec, phase: str) -> None:
        req, pb = run.req, run.pb
        record = run.done.get(step.name)
        if record is not None and record.status == "succeeded":
            run.outputs[step.name] = record.outputs  # completed before a crash: never repeated
            return
        ctx = StepContext(
            decision_id=req.decision_id,
            node=req.node,
            step=step.name,
            playbook=pb.name,
            playbook_version=pb.version,
            safety=self.safety,
            deadline=time.monotonic() + step.timeout_s,
            gpu=req.gpu,
            pool=req.pool,
            failure_class=req.failure_class,
            reasons=req.reasons,
            approved=run.approved,
            outputs=dict(run.outputs),
        )
        try:
            if step.mutating:
                ensure_allowed(ctx)
                if not run.started:
                    self._started(run, step)
            self.journal.mark_step(req.decision_id, step.name, phase, "started", time.time())
            run.executed.append(step.name)
            with STEP_SECONDS.labels(playbook=run.pb.name, step=step.name).time():
                result = self._attempts(step, ctx)
        except Refused as err:
            self._record(run, step, phase, "refused", err.detail)
            raise
        except _StepTimeout:
            detail = f"step {step.name} exceeded its {step.timeout_s:g}s budget"
            self._record(run, step, phase, "timeout", detail)
            raise _StepFailed(detail, keep_quarantine=False) from None
        except Escalate as err:
            self._record(run, step, phase, "failed", err.detail)
            raise _StepFailed(err.detail, keep_quarantine=True) from err
        except PermanentError as err:
            self._record(run, step, phase, "failed", err.detail)
            raise _StepFailed(err.detail, keep_quarantine=False) from err
        except Exception as err:  # an actuator bug or an unexpected API answer: fail safe, never crash
            detail = f"{type(err).__name__}: {err}"
            self._record(run, step, phase, "failed", detail)
            raise _StepFailed(detail, keep_quarantine=False) from err
        if result.validation == "failed":
            self._record(run, step, phase, "failed", result.detail, validation="failed")
            raise _StepFailed(f"validation failed: {result.detail}", keep_quarantine=True)
        self._record(run, step, phase, "succeeded", result.detail, result.outputs, result.validation)
        run.outputs[step.name] = result.outputs

    def _started(self, run: _Run, step: StepSpec) -> None:
        """Emit the run's ``in_progress`` result before its first mutating step: the node is being
        repaired from now on (Quarantined → Repairing). A resumed run whose mutating step already
        succeeded emitted it before; a repeat has the same id and is dropped downstream anyway."""
        run.started = True
        if any(s.mutating and s.name in run.done for s in run.pb.steps):
            return
        detail = f"playbook {run.pb.name} {run.pb.version}: starting {step.name}"
        self.emit(self._workflow_event(run.req, run.pb, "in_progress", detail, step=STARTED))

    def _attempts(self, step: StepSpec, ctx: StepContext) -> StepResult:
        """Call the actuator until it succeeds, fails for good, or the step's budget runs out."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return _call_bounded(self.actuators[step.actuator], step, replace(ctx, attempt=attempt))
            except TemporaryError as err:
                if ctx.remaining_s() <= err.retry_after_s:
                    raise _StepTimeout from err
                self._sleep(err.retry_after_s)

    def _rollback(self, run: _Run) -> None:
        """Undo what the playbook says to undo; a rollback step's failure is recorded and the rest
        still run, but a kill switch stops them all (rollback steps mutate too)."""
        for step in run.pb.rollback:
            try:
                self._step(run, step, "rollback")
            except Refused:
                return
            except _StepFailed:
                continue

    # --- recording --------------------------------------------------------------------------------

    def _record(
        self,
        run: _Run,
        step: StepSpec,
        phase: str,
        status: ActionStatus,
        detail: str,
        outputs: dict[str, Any] | None = None,
        validation: str | None = None,
    ) -> None:
        req, pb = run.req, run.pb
        self.emit(
            action_result(
                decision_id=req.decision_id,
                node=req.node,
                step=step.name,
                action=f"{step.actuator}.{step.operation}",
                status=status,
                time=self._now(),
                detail=detail,
                playbook=pb.name,
                playbook_version=pb.version,
                gpu=req.gpu,
                validation=validation,
            )
        )
        self.journal.mark_step(req.decision_id, step.name, phase, status, time.time(), detail, outputs)

    def _finish(
        self, req: WorkRequest, pb: Playbook, status: OutcomeStatus, detail: str, executed: list[str]
    ) -> Outcome:
        event_status: ActionStatus = "succeeded" if status == "succeeded" else "failed"
        text = detail if status == "succeeded" else f"{status}: {detail}"
        self.emit(self._workflow_event(req, pb, event_status, text))
        self.journal.finish_run(req.decision_id, status, detail, time.time())
        return Outcome(req.decision_id, status, pb.name, detail, tuple(executed))

    def _reject(self, req: WorkRequest, pb: Playbook | None, detail: str) -> Outcome:
        """Nothing ran: preconditions, approval or selection said no. Recorded so it stays visible."""
        name = pb.name if pb else "-"
        self.journal.start_run(req.decision_id, req.node, name, pb.version if pb else "-", time.time())
        self.emit(self._workflow_event(req, pb, "refused", detail))
        self.journal.finish_run(req.decision_id, "rejected", detail, time.time())
        return Outcome(req.decision_id, "rejected", pb.name if pb else None, detail)

    def _workflow_event(
        self, req: WorkRequest, pb: Playbook | None, status: ActionStatus, detail: str, step: str = RUN_STEP
    ) -> dict[str, Any]:
        """A run-level result: ``workflow`` is the run's outcome (its last event), STARTED its start."""
        return action_result(
            decision_id=req.decision_id,
            node=req.node,
            step=step,
            action=req.action,
            status=status,
            time=self._now(),
            detail=detail,
            playbook=pb.name if pb else None,
            playbook_version=pb.version if pb else None,
            gpu=req.gpu,
        )


def _call_bounded(actuator: Actuator, step: StepSpec, ctx: StepContext) -> StepResult:
    """Run the actuator in a thread and stop waiting shortly after the step's deadline. Python cannot
    kill the thread, so actuators must honour ``ctx.deadline`` themselves; this is the backstop."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = actuator.execute(step, ctx)
        except BaseException as err:  # handed to the caller's thread below
            box["error"] = err

    thread = threading.Thread(target=target, name=f"step:{ctx.idempotency_key}", daemon=True)
    thread.start()
    thread.join(ctx.remaining_s() + _GRACE_S)
    if thread.is_alive():
        raise _StepTimeout
    if "error" in box:
        raise box["error"]
    result: StepResult = box["result"]
    return result
