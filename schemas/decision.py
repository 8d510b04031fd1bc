"""The decision record: one per node-state transition, the public contract of the decisions topic."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import SCHEMA_VERSION, EventTime, GpuIndex, NodeId, NodeState
from schemas.proposal import PlanApprover
from schemas.vocab import ActionKind as ActionKind
from schemas.vocab import Mode as Mode

ACTION_COST: dict[ActionKind, int] = {
    ActionKind.NONE: 0,
    ActionKind.OBSERVE: 0,
    ActionKind.VALIDATE: 0,
    ActionKind.RETURN_TO_SERVICE: 0,
    ActionKind.FLEET_INCIDENT: 1,
    ActionKind.ROLLBACK_CHANGE: 1,
    ActionKind.TICKET: 1,
    ActionKind.GPU_RESET: 2,
    ActionKind.REBOOT: 3,
    ActionKind.DRAIN: 4,
    ActionKind.REIMAGE: 5,
    ActionKind.RMA: 6,
}
"""The action ladder by cost: GPU reset < reboot < drain of a running job < reimage < replace/RMA."""

DESTRUCTIVE = frozenset({ActionKind.DRAIN, ActionKind.REIMAGE, ActionKind.RMA})

GuardFigure = int | float | str | bool | None


class GuardCheck(BaseModel):
    """One guardrail consulted for a decision, with the figures it judged (auditors read these)."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    figures: dict[str, GuardFigure] = Field(default_factory=dict)
    detail: str = ""


REISSUED = ":reissued:"
"""Infix of a decision the guard issues again when a lever lifts: ``<original id>:reissued:<lever
message id>``. A new id, so the actuator stage's journal admits it once under its new stamp's
freshness, yet linked to the original, whose paused run (and workflow journal) it resumes; it
changes no node's lifecycle (the node stage applied the original)."""


class Decision(BaseModel):
    """``id`` is deterministic in the triggering input, so the same stream yields the same ids and
    actuators can use it as their idempotency key. ``executable`` is the guard's verdict: only a
    decision with ``executable=True`` may ever mutate infrastructure."""

    model_config = ConfigDict(frozen=True)

    id: str
    time: EventTime
    node: NodeId
    gpu: GpuIndex | None = None
    from_state: NodeState
    to_state: NodeState
    trigger: str
    failure_class: str
    confidence: Annotated[float, Field(ge=0, le=1)]
    action: ActionKind
    mode: Mode
    executable: bool
    reasons: list[str]
    evidence: list[str]
    guard: list[GuardCheck] = Field(default_factory=list)
    policy_version: str
    incident_id: str | None = None
    held: bool = False
    """The guard held the proposed transition (concurrency, headroom, breaker, incident freeze): the node
    stays where it was; a later decision may release it."""
    stale: bool = False
    replay: bool = False
    playbook: str | None = None
    """Set only on the decision for an operator's repair plan (trigger ``operator_plan``): the
    playbook the plan was approved with, under the guard's seal."""
    plan_id: str | None = None
    approvers: list[PlanApprover] = Field(default_factory=list)
    """The plan's approvers as the API verified them: the workflow engine checks the playbook's
    approval rule against them."""
    schema_version: int = SCHEMA_VERSION
