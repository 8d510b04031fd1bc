"""Repair plans (``POST /repair-plans``): which nodes, which playbook and version, what
risk, what capacity each pool loses against its headroom, and who must approve.

A plan's ``content_hash`` covers everything that decides what would run (nodes, actions, playbooks
and versions, capacity figures, approval rule). Approval tokens are bound to it, and execution
re-plans from the live state and refuses when the hash moved: a plan runs only as it was approved.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from actuators.playbooks import Catalog, Playbook
from breakfix.api.params import ID_PATTERN
from policy.headroom import pool_headroom
from policy.model import Policy
from schemas.common import NodeState
from schemas.decision import ActionKind
from schemas.vocab import FailureClass

SERVING = frozenset({NodeState.HEALTHY.value, NodeState.SUSPECT.value})
"""States in which a node's GPUs still count as healthy capacity (a Suspect node still serves)."""

Risk = Literal["low", "medium", "high"]
PlanStatus = Literal["dry_run", "pending_approval", "approved", "executing", "executed", "failed"]
Name = Annotated[str, Field(min_length=1, max_length=253, pattern=ID_PATTERN)]


LabelKey = Annotated[str, Field(min_length=1, max_length=253)]
LabelValue = Annotated[str, Field(max_length=1024)]


class Selector(BaseModel):
    """Narrows a plan's nodes; every field given must match. ``labels`` are matched exactly against the
    labels of each node's latest inventory report (all of them, so a plan can target one fabric or zone
    inside a rack-spanning pool)."""

    model_config = ConfigDict(extra="forbid")

    rack: Name | None = None
    sku: Name | None = None
    state: NodeState | None = None
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=32)] = Field(default_factory=dict)


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: Name
    nodes: Annotated[list[Name], Field(min_length=1, max_length=1000)] | None = None
    selector: Selector | None = None
    failure_class: FailureClass
    action: ActionKind | None = None
    dry_run: bool = True


class PlannedNode(BaseModel):
    node: str
    pool: str
    rack: str
    sku: str
    gpus: int
    gpu: int | None = None
    state: str
    action: str
    playbook: str
    playbook_version: str
    risk: Risk


class PoolCapacity(BaseModel):
    pool: str
    total_gpus: int
    healthy_gpus: int
    removed_gpus: int
    min_healthy_gpus: int
    headroom_ok: bool


class ApprovalRule(BaseModel):
    kind: Literal["none", "role", "two_person", "canary_list"]
    role: str | None = None
    two_person: bool
    canary_nodes: list[str] = Field(default_factory=list)
    token_required: bool
    """False only for a read-only playbook or when every node is on the playbook's canary list."""
    approvals_needed: int = 0
    """Distinct approvers other than the requester before execution (0, 1 or 2)."""
    summary: str = ""
    """The rule in one sentence, as the CLI and MCP show it."""


class Approval(BaseModel):
    actor: str
    role: str
    at: datetime
    comment: str = ""


class PlanContent(BaseModel):
    """The part of a plan the content hash covers."""

    pool: str
    failure_class: str
    action: str
    dry_run: bool
    nodes: list[PlannedNode]
    capacity: list[PoolCapacity]
    approval: ApprovalRule
    notes: list[str] = Field(default_factory=list)
    """What an approver should know about the targets (a Healthy node named by hand)."""

    def digest(self) -> str:
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()


class Plan(PlanContent):
    id: str
    content_hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    status: PlanStatus
    approvals: list[Approval] = Field(default_factory=list)
    workflow_id: str | None = None
    request: PlanRequest
    """What was asked: execution re-plans it and refuses when the content hash moved."""


class PlanError(ValueError):
    """The request cannot be planned; the message says what to change (answered as 422)."""


def approval_summary(needed: int, role: str | None, canary: bool, mutating: bool) -> str:
    """The approval rule in words; one vocabulary for the plan, the refusals and the CLI.

    >>> approval_summary(2, "approver", False, True)
    'two approvers (role approver or admin), neither the requester'
    >>> approval_summary(0, None, False, False)
    'none: the playbook only reads'
    """
    if needed == 0:
        return (
            "none: every node is on the playbook's canary list"
            if canary
            else ("none: the playbook only reads" if not mutating else "none")
        )
    who = f"role {role or 'approver'} or admin"
    if needed == 1:
        return f"one approver ({who}) other than the requester"
    return f"two approvers ({who}), neither the requester"


def choose_playbook(catalog: Catalog, failure_class: str, action: str | None) -> Playbook:
    if action:
        pb = catalog.select(failure_class, action)
        if pb is None:
            served = sorted(
                {
                    a
                    for p in catalog.playbooks.values()
                    if failure_class in p.failure_classes and p.scope == "node"
                    for a in p.actions
                }
            )
            raise PlanError(
                f"no node-level playbook serves {failure_class}/{action}; "
                f"actions for {failure_class}: {served}"
            )
        return pb
    fits = [p for p in catalog.playbooks.values() if failure_class in p.failure_classes and p.scope == "node"]
    if not fits:
        raise PlanError(f"no node-level playbook serves failure class {failure_class}")
    ladder = list(ActionKind)  # cheapest first
    # No action asked: the preferred playbook, then the least invasive one (read-only before
    # mutating, no approval before approval, cheaper first action first).
    return min(
        fits,
        key=lambda p: (
            -p.priority,
            p.mutating,
            p.approval.kind != "none",
            ladder.index(p.actions[0]),
            p.name,
        ),
    )


def _risk(pb: Playbook, action: str) -> Risk:
    if pb.approval.kind == "two_person" or action in (ActionKind.RMA.value, ActionKind.REIMAGE.value):
        return "high"
    return "medium" if pb.mutating else "low"


def _select(req: PlanRequest, fleet: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The nodes a plan targets, and notes the plan shows about them.

    Without ``nodes`` only the pool's nodes whose current state came from a decision of the plan's
    failure class are candidates (a Healthy node never is: nothing is wrong with it); the selector
    narrows that. Named nodes are taken as named, and a Healthy one among them is called out, so an
    approver sees it was chosen by hand.
    """
    by_name = {n["node"]: n for n in fleet}
    klass = req.failure_class.value
    notes: list[str] = []
    sel = req.selector or Selector()
    if req.nodes:
        unknown = sorted(set(req.nodes) - set(by_name))
        if unknown:
            raise PlanError(f"nodes not in pool {req.pool}'s inventory: {unknown}")
        chosen = [by_name[n] for n in sorted(set(req.nodes))]
    else:
        if sel.state is NodeState.HEALTHY:
            raise PlanError("Healthy nodes are planned only when named: list them with nodes (--node)")
        chosen = [
            n
            for n in sorted(fleet, key=lambda n: n["node"])
            if n["state"] != NodeState.HEALTHY.value and n.get("failure_class") == klass
        ]
        if not chosen:
            raise PlanError(
                f"no node of pool {req.pool} is in a state of failure class {klass}: "
                "check `breakfix nodes --pool POOL`, or name nodes with --node"
            )
    chosen = [
        n
        for n in chosen
        if (sel.rack is None or n["rack"] == sel.rack)
        and (sel.sku is None or n["sku"] == sel.sku)
        and (sel.state is None or n["state"] == sel.state.value)
        and all((n.get("labels") or {}).get(k) == v for k, v in sel.labels.items())
    ]
    if not chosen:
        raise PlanError(f"no node of pool {req.pool} matches the nodes/selector given")
    for n in chosen:
        if n["state"] == NodeState.HEALTHY.value:
            notes.append(f"{n['node']} is Healthy: included only because it was named")
        elif n.get("failure_class") not in (None, klass):
            notes.append(f"{n['node']} is {n['state']} for {n['failure_class']}, not {klass}: named by hand")
    return chosen, notes


def plan_content(
    req: PlanRequest, fleet: Sequence[dict[str, Any]], catalog: Catalog, policy: Policy
) -> PlanContent:
    """Plan ``req`` against the pool's current nodes (``fleet``: rows of the state reader)."""
    if not fleet:
        raise PlanError(f"pool {req.pool} has no nodes in the inventory")
    pb = choose_playbook(catalog, req.failure_class.value, req.action.value if req.action else None)
    action = req.action.value if req.action else pb.actions[0].value
    chosen, notes = _select(req, fleet)
    total = sum(int(n["gpus"]) for n in fleet)
    healthy = sum(int(n["gpus"]) for n in fleet if n["state"] in SERVING)
    removed = sum(int(n["gpus"]) for n in chosen if n["state"] in SERVING) if pb.mutating else 0
    # The guard's own arithmetic (policy.headroom), over the store's view: the guard decides each
    # node's step again over its record of the fleet, so this is the preview an approver signs off.
    room = pool_headroom(total, total - healthy, removed, policy.min_healthy_fraction(req.pool))
    headroom_ok = room.ok
    capacity = PoolCapacity(
        pool=req.pool,
        total_gpus=total,
        healthy_gpus=healthy,
        removed_gpus=removed,
        min_healthy_gpus=math.ceil(room.minimum),
        headroom_ok=headroom_ok,
    )
    risk = _risk(pb, action)
    nodes = [
        PlannedNode(
            node=n["node"],
            pool=req.pool,
            rack=n["rack"],
            sku=n["sku"],
            gpus=int(n["gpus"]),
            # the GPU the node's current decision names, when it is of this class: a GPU-level
            # playbook (a GPU reset) acts on that GPU
            gpu=n.get("gpu") if n.get("failure_class") == req.failure_class.value else None,
            state=n["state"],
            action=action,
            playbook=pb.name,
            playbook_version=pb.version,
            risk="high" if not headroom_ok else risk,
        )
        for n in chosen
    ]
    canary = pb.approval.kind == "canary_list" and all(n.node in pb.approval.canary_nodes for n in nodes)
    required = (pb.mutating or pb.approval.kind != "none") and not canary
    needed = (2 if pb.approval.kind == "two_person" else 1) if required else 0
    rule = ApprovalRule(
        kind=pb.approval.kind,
        role=pb.approval.role,
        two_person=pb.approval.kind == "two_person",
        canary_nodes=list(pb.approval.canary_nodes),
        token_required=required,
        approvals_needed=needed,
        summary=approval_summary(needed, pb.approval.role, canary, pb.mutating),
    )
    return PlanContent(
        pool=req.pool,
        failure_class=req.failure_class.value,
        action=action,
        dry_run=req.dry_run,
        nodes=nodes,
        capacity=[capacity],
        approval=rule,
        notes=notes,
    )
