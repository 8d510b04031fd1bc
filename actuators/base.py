"""The actuator plugin contract: what a workflow step is, what an actuator does with it, how it fails.

Where this sits: the workflow engine (actuators/workflow/) walks a playbook's steps and hands each one
to the actuator registered under ``step.actuator``, one of the kinds of ``actuators.registry``
(``kubernetes``, ``slurm``, ``node_agent``, ``ticket``, ``health_override``, ``validate``, ``nico``,
or a plugin's). Actuators are the only code that touches real infrastructure, so the contract carries
the safety rules with it:

- every mutating step calls :func:`ensure_allowed` at the last moment (kill switch and exclusions may
  have flipped since the guard decided);
- ``ctx.idempotency_key`` (decision id + step) makes a repeated step a no-op;
- an actuator lifts only holds it set itself (:data:`OWNER`, :data:`TAINT_KEY`, :data:`REASON_PREFIX`)
  and reports whether it owns a node's hold through ``owns``;
- the exception type decides what the engine does next (kopf's vocabulary): :class:`TemporaryError`
  is retried after ``retry_after_s`` within the step's budget, :class:`PermanentError` fails the step
  (rollback, then escalation), :class:`Escalate` hands the node to a human with its quarantine kept,
  :class:`Refused` means a guardrail said no and nothing was changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from actuators.registry import check_kind, check_operation

# Reason ownership: the marks this product puts on infrastructure, and the only ones it ever lifts.
OWNER = "breakfix"
TAINT_KEY = "breakfix.io/quarantine"
REASON_PREFIX = "breakfix:"


class StepSpec(BaseModel):
    """One playbook step, as written in the catalog YAML. ``operation`` is the actuator's verb
    (``cordon``, ``drain``, ``gpu_reset``, ...); ``params`` are passed through to it untouched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
    actuator: Annotated[str, Field(min_length=1, max_length=64)]
    operation: Annotated[str, Field(min_length=1, max_length=64)]
    mutating: bool
    timeout_s: Annotated[float, Field(gt=0, le=86_400)]
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("actuator")
    @classmethod
    def _registered(cls, value: str) -> str:
        """Only a kind of ``actuators.registry`` may be named."""
        return check_kind(value)

    @field_validator("operation")
    @classmethod
    def _offered(cls, value: str, info: ValidationInfo) -> str:
        """Only one of that kind's verbs (checked when the kind itself was valid)."""
        actuator = info.data.get("actuator")
        return check_operation(actuator, value) if actuator else value


class Safety(Protocol):
    """The guardrails an actuator re-checks right before it mutates (fed by the control topic)."""

    def killswitch_on(self, pool: str | None) -> bool:
        """True when the global kill switch, or the one for ``pool``, is engaged."""
        ...

    def excluded(self, node: str, pool: str | None) -> bool:
        """True when the node, or ``pool`` (the node's, when known), carries an exclusion: recommend
        only, never act."""
        ...


@dataclass(frozen=True)
class StepContext:
    """Everything an actuator may know about the step it runs, besides the step itself.

    ``deadline`` is a ``time.monotonic()`` value: actuators that wait (a drain behind a PDB, a reboot)
    must stop waiting when it passes. ``outputs`` holds earlier steps' outputs by step name (a ticket
    step can attach the bundle a diagnostic step collected). ``approved`` is true only when the
    playbook's approval requirement was met by a person (or a pre-approved canary list)."""

    decision_id: str
    node: str
    step: str
    playbook: str
    playbook_version: str
    safety: Safety
    deadline: float
    gpu: int | None = None
    pool: str | None = None
    failure_class: str = ""
    reasons: tuple[str, ...] = ()
    approved: bool = False
    attempt: int = 1
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """Decision id + step: the same key on a retry or a resume makes the step a no-op."""
        return f"{self.decision_id}/{self.step}"

    def remaining_s(self) -> float:
        """Seconds left in this step's budget (never negative)."""
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class StepResult:
    """What a step did. ``changed`` is false when it found the work already done (idempotent repeat);
    ``outputs`` feeds later steps and the action.result detail; ``validation`` is set by checks."""

    detail: str = ""
    changed: bool = True
    outputs: dict[str, Any] = field(default_factory=dict)
    validation: Literal["passed", "failed"] | None = None


@runtime_checkable
class Actuator(Protocol):
    """A plugin that performs playbook steps of one kind on real infrastructure."""

    name: str  # the ``StepSpec.actuator`` kind it serves

    def supports(self, operation: str) -> bool:
        """True when ``operation`` is one of this actuator's verbs (checked when a playbook loads)."""
        ...

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        """Perform the step idempotently, or raise one of the errors below."""
        ...

    def owns(self, node: str) -> bool:
        """True when the hold on ``node`` this actuator would lift (cordon, drain, override) was set
        by this product; an operator's own hold is never ours and is never lifted."""
        ...


class ActuatorError(Exception):
    """Base of the vocabulary; ``detail`` ends up in the action.result event."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PermanentError(ActuatorError):
    """Retrying will not help (bad params, node gone, validation failed): fail the step."""


class TemporaryError(ActuatorError):
    """Retry after ``retry_after_s`` while the step's budget lasts (API 5xx, conflict, PDB 429)."""

    def __init__(self, detail: str, retry_after_s: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Escalate(PermanentError):
    """The step cannot finish safely without a person (a PDB blocked the drain past its budget):
    stop, keep the quarantine in place, escalate."""


class Refused(ActuatorError):
    """A guardrail (kill switch, exclusion, missing approval) forbade the step; nothing was changed."""


def ensure_allowed(ctx: StepContext) -> None:
    """The last-moment re-check every mutating step performs before it changes anything."""
    if ctx.safety.killswitch_on(ctx.pool):
        raise Refused(f"kill switch engaged (pool={ctx.pool or 'global'})")
    if ctx.safety.excluded(ctx.node, ctx.pool):
        raise Refused(f"node {ctx.node} is excluded from automation")
