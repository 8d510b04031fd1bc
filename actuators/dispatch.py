"""From one decision to what the actuators do about it: the actuator stage's Kafka-free core.

Where this sits: the actuator stage (streams/actuation/stage.py) reads the decisions topic and hands
every decision here, together with the approvals and the node's pool it learned from the control
topic. This module decides whether the decision acts at all, and how:

- Only :func:`~actuators.workflow.request.from_decision` turns a decision into work, and it refuses
  replayed, stale, shadow and recommend-only decisions, so none of them can reach an actuator.
- ``none``/``observe`` are not work; ``return_to_service`` needs none either, because every repair
  playbook ends by lifting its own holds (uncordon) before the node may return.
- ``validate`` (the node stage moved a repaired node to Validating) is answered from the validation
  the repair playbook just ran, found through the decision's evidence (the id of the workflow's
  ``succeeded`` event), so a node is not validated twice; when no playbook validated it (a tenant's
  repair, an operator's), the ``validate`` actuator runs once on its own. The answer is an
  ``action.result`` with ``action="validate"``, which the node stage turns into Healthy or Escalated.
- Everything else runs its playbook in the :class:`~actuators.workflow.WorkflowEngine`, which
  journals each step, so the same decision handled again (a redelivery after a crash) resumes
  instead of repeating a completed step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from actuators.base import Actuator, ActuatorError, StepContext, StepSpec
from actuators.workflow import Approver, NotExecutable, WorkflowEngine, action_result, from_decision
from actuators.workflow.results import Emitter
from schemas.decision import ActionKind, Decision

NOT_WORK = frozenset({ActionKind.NONE, ActionKind.OBSERVE, ActionKind.RETURN_TO_SERVICE})
Verdict = Literal["not_executable", "not_work", "validated", "succeeded", "escalated", "paused", "rejected"]

# Validation run on its own when no playbook validated the node (seconds of step budget).
_STANDALONE = StepSpec(
    name="validate", actuator="validate", operation="run", mutating=False, timeout_s=1800,
    params={"dcgm_level": 1},
)  # fmt: skip


@dataclass(frozen=True)
class Handled:
    """What became of one decision; ``executed`` names the steps whose actuator was called."""

    decision_id: str
    verdict: Verdict
    detail: str = ""
    executed: tuple[str, ...] = ()


class Dispatcher:
    def __init__(self, engine: WorkflowEngine, emit: Emitter, now: Callable[[], datetime]) -> None:
        self.engine, self.emit, self.now = engine, emit, now

    def handle(
        self, decision: Decision, pool: str | None = None, approvers: tuple[Approver, ...] = ()
    ) -> Handled:
        try:
            req = from_decision(decision, pool=pool, approvers=approvers)
        except NotExecutable as why:
            return Handled(decision.id, "not_executable", str(why))
        if decision.action in NOT_WORK:
            return Handled(decision.id, "not_work", f"{decision.action.value} needs no actuator")
        if decision.action is ActionKind.VALIDATE:
            return self._validate(decision, pool)
        # The guard's decision has already moved the node (a decisive Xid goes Healthy -> Quarantined
        # in one step), so the state the playbook starts from is the decision's target state.
        out = self.engine.run(replace(req, from_state=decision.to_state.value))
        return Handled(decision.id, out.status, out.detail, out.executed)

    # --- validation -------------------------------------------------------------------------------

    def _validate(self, decision: Decision, pool: str | None) -> Handled:
        found = self._journaled(decision)
        if found is None:
            found = self._standalone(decision, pool)
        passed, detail = found
        self.emit(
            action_result(
                decision_id=decision.id,
                node=decision.node,
                step="validate",
                action="validate",
                status="succeeded",
                time=self.now(),
                detail=detail,
                gpu=decision.gpu,
                validation="passed" if passed else "failed",
            )
        )
        return Handled(decision.id, "validated", detail)

    def _journaled(self, decision: Decision) -> tuple[bool, str] | None:
        """The outcome of the validate step of the run whose success triggered this decision."""
        for ev in decision.evidence:
            run_id, sep, tail = ev.rpartition("/workflow:")
            if not sep or tail != "succeeded":
                continue
            run = self.engine.journal.run(run_id)
            if run is None or run.playbook not in self.engine.catalog.playbooks:
                continue
            checks = [s.name for s in self.engine.catalog.get(run.playbook).steps if s.actuator == "validate"]
            steps = self.engine.journal.steps(run_id)
            for name in checks:
                record = steps.get(name)
                if record is not None and record.status in ("succeeded", "failed"):
                    return record.status == "succeeded", f"playbook {run.playbook}: {record.detail}"
        return None

    def _standalone(self, decision: Decision, pool: str | None) -> tuple[bool, str]:
        validator: Actuator | None = self.engine.actuators.get("validate")
        if validator is None:
            return False, "no validate actuator registered: cannot validate (fails closed)"
        ctx = StepContext(
            decision_id=decision.id,
            node=decision.node,
            step=_STANDALONE.name,
            playbook="-",
            playbook_version="-",
            safety=self.engine.safety,
            deadline=time.monotonic() + _STANDALONE.timeout_s,
            gpu=decision.gpu,
            pool=pool,
            failure_class=decision.failure_class,
        )
        try:
            result = validator.execute(_STANDALONE, ctx)
        except ActuatorError as err:
            return False, err.detail
        return result.validation == "passed", result.detail
