"""The playbook model: a repair procedure kept as data, validated when the catalog loads.

A playbook says which failure classes and decision actions it serves, what must hold before it may
start (preconditions), the steps it runs (each bounded in time and handed to one actuator kind), the
steps that undo a failed run (rollback), and who must approve it. The workflow engine
(actuators/workflow/) runs it; nothing here performs I/O.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from actuators.base import StepSpec
from schemas.common import NodeState
from schemas.decision import ActionKind
from schemas.vocab import FailureClass


class Preconditions(BaseModel):
    """What must hold before the first step. ``from_states`` are the node states the decision may
    leave; ``max_active_jobs`` (None = any) is compared with the scheduler's count; ``headroom``
    requires the guard's headroom check on the decision to have passed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    from_states: list[NodeState] = Field(default_factory=lambda: list(NodeState))
    max_active_jobs: Annotated[int, Field(ge=0)] | None = None
    headroom: bool = False


ApproverRole = Literal["approver", "admin"]
"""The roles of the API's role table that may approve (``breakfix.api.roles``; a test keeps the two
in step): a playbook naming any other role could never be approved."""


class Approval(BaseModel):
    """Who must approve before the first mutating step: nobody, one person holding ``role``, two
    distinct people (``two_person``, each holding ``role`` when one is named), or nobody for nodes on
    a pre-approved ``canary`` list (anyone else needs ``role``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["none", "role", "two_person", "canary_list"] = "none"
    role: ApproverRole | None = None
    canary_nodes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _role_named(self) -> Approval:
        if self.kind in ("role", "canary_list") and not self.role:
            raise ValueError(f"approval kind {self.kind!r} needs a role")
        return self


class Playbook(BaseModel):
    """One catalog entry. ``(name, version)`` is recorded with every action it takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]*$", max_length=64)]
    version: Annotated[str, Field(pattern=r"^\d+\.\d+(\.\d+)?$")]
    description: str
    failure_classes: Annotated[list[FailureClass], Field(min_length=1)]
    actions: Annotated[list[ActionKind], Field(min_length=1)]
    scope: Literal["node", "gpu"] = "node"
    priority: int = 0
    preconditions: Preconditions = Field(default_factory=Preconditions)
    approval: Approval = Field(default_factory=Approval)
    steps: Annotated[list[StepSpec], Field(min_length=1)]
    rollback: list[StepSpec] = Field(default_factory=list)
    rollback_on_escalation: bool = False

    @model_validator(mode="after")
    def _unique_step_names(self) -> Playbook:
        names = [s.name for s in [*self.steps, *self.rollback]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"step names must be unique across steps and rollback: {dupes}")
        return self

    @property
    def mutating(self) -> bool:
        return any(s.mutating for s in self.steps)
