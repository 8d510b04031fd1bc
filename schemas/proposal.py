"""Proposals: the node stage's request for a transition, judged by the single-writer guard.

The node stage never changes a node's lifecycle on its own: it proposes, the guard decides (one
decision per proposal, possibly after waiting for a slot), and the decision flows back to the node
stage, which applies it. Proposals carry the node's placement so the guard needs no inventory lookup.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import SCHEMA_VERSION, EventTime, FailureDomain, GpuIndex, NodeId, NodeState
from schemas.vocab import ActionKind


class Placement(BaseModel):
    model_config = ConfigDict(frozen=True)

    pool: str
    rack: str
    sku: str
    gpus: Annotated[int, Field(ge=0)]
    labels: dict[str, str] = Field(default_factory=dict)


class Proposal(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    """Deterministic (node, trigger, triggering event id): the decision made for it reuses it."""
    time: EventTime
    node: NodeId
    gpu: GpuIndex | None = None
    from_state: NodeState
    to_state: NodeState
    trigger: str
    failure_class: str
    domain: FailureDomain | None = None
    confidence: Annotated[float, Field(ge=0, le=1)]
    action: ActionKind
    reasons: list[str]
    evidence: list[str]
    evidence_time: EventTime
    """Time of the newest evidence behind the proposal; the guard's stale cutoff compares against it."""
    placement: Placement
    job: str | None = None
    signal: str | None = None
    """The strongest signal behind the proposal (``xid.79``, ``sbe_rate``, ...): the guard's blast radius
    compares nodes raising the same signal, never a weaker one with a decisive one."""
    decisive: bool = False
    """The evidence includes a signal the catalog marks decisive (fallen off the bus, DBE with a row
    remap failure, uncontained ECC): node-local, never frozen by an incident of another signal."""
    lost_gpus: Annotated[int, Field(ge=0)] = 0
    """GPUs of the node already out of service without the product's doing (the node NotReady: all of
    them; GPUs fallen off the bus): the guard's headroom counts them as removed."""
    replay: bool = False
    schema_version: int = SCHEMA_VERSION


class Registration(BaseModel):
    """A node's placement, sent to the guard when its inventory first arrives or changes, so headroom
    and per-rack/pool/SKU limits are computed over the whole fleet."""

    model_config = ConfigDict(frozen=True)

    node: NodeId
    time: EventTime
    placement: Placement
    replay: bool = False
    schema_version: int = SCHEMA_VERSION


class PlanApprover(BaseModel):
    """One person whose approval of a repair plan the API verified (bound to the plan's content)."""

    model_config = ConfigDict(frozen=True)

    actor: str
    role: str


class OperatorProposal(BaseModel):
    """One node's step of an approved operator repair plan, sent by the API to the guard.

    The API signs it (role ``api``); the guard refuses one that is not so signed, then judges it with
    the same guardrails as any proposal (kill switch, exclusion, concurrency, headroom, rate limit):
    the plan's approvals stand for the class's mode and the approval check. The guard takes the
    node's state from its own record, never from this message, so its capacity arithmetic is the
    only one. The decision it issues names the playbook and the approvers, under the guard's seal,
    for the actuator stage to run."""

    model_config = ConfigDict(frozen=True)

    id: str
    """``<workflow id>.<node>``: unique per node of one execution; the decision is ``d-`` + it."""
    time: EventTime
    node: NodeId
    gpu: GpuIndex | None = None
    failure_class: str
    action: ActionKind
    playbook: str
    plan_id: str
    workflow_id: str
    requested_by: str
    approvers: list[PlanApprover]
    placement: Placement
    schema_version: int = SCHEMA_VERSION
