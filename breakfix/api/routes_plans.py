"""Repair plans (create, show, approve, execute) and the workflows executing them.

Executing a plan submits its steps to the guard, signed (:mod:`breakfix.api.plan_driver`): the guard
decides each node's step with its own guardrails and the actuator stage runs what it decides. The
API runs no actuator, so it never refuses a plan for an actuator it lacks: the actuator stage refuses
a playbook needing a kind it has not registered, naming the option that adds it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from breakfix.api.approvals import TokenRefused
from breakfix.api.auth import principal
from breakfix.api.context import ApiContext
from breakfix.api.errors import ERRORS
from breakfix.api.metrics import PLANS
from breakfix.api.paging import more
from breakfix.api.params import PathId
from breakfix.api.plans import Approval, Plan, PlanError, PlanRequest, plan_content
from breakfix.api.tokens import Principal

Who = Annotated[Principal, Depends(principal)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, Field(max_length=2000)] = ""


class ApproveResponse(BaseModel):
    approval_token: str
    plan_id: str
    content_hash: str
    expires_at: datetime
    approvals: int
    approvals_needed: int


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval_token: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=64)] = 1
    rollback_policy: Literal["on_failure", "none"] = "on_failure"


class ExecuteResponse(BaseModel):
    workflow_id: str
    plan_id: str


def _off_canary(plan: Plan) -> str:
    """Why a canary-list playbook still needs a token: the nodes its list does not name."""
    rule = plan.approval
    if rule.kind != "canary_list":
        return ""
    off = [n.node for n in plan.nodes if n.node not in rule.canary_nodes]
    return f": {', '.join(off)} not on the pre-approved canary list {rule.canary_nodes}"


class PlanRow(BaseModel):
    id: str
    status: str
    pool: str
    failure_class: str
    action: str
    nodes: int
    approvals: str
    created_by: str
    created_at: datetime
    workflow_id: str | None = None


class WorkflowRow(BaseModel):
    id: str
    plan_id: str
    status: str
    nodes: int
    started_at: datetime
    finished_at: datetime | None = None


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter(responses=ERRORS)

    @r.get("/repair-plans", name="plans.list", response_model=list[PlanRow])
    def list_plans(response: Response, limit: Limit = 50) -> list[PlanRow]:
        plans = ctx.plans.list(limit + 1)
        more(response, len(plans) > limit)
        return [
            PlanRow(
                id=p.id,
                status=load(p.id).status,
                pool=p.pool,
                failure_class=p.failure_class,
                action=p.action,
                nodes=len(p.nodes),
                approvals=f"{len(p.approvals)}/{p.approval.approvals_needed}",
                created_by=p.created_by,
                created_at=p.created_at,
                workflow_id=p.workflow_id,
            )
            for p in plans[:limit]
        ]

    @r.get("/workflows", name="workflows.list", response_model=list[WorkflowRow])
    def list_workflows(response: Response, limit: Limit = 50) -> list[WorkflowRow]:
        recs = ctx.workflows.book.list(limit + 1)
        more(response, len(recs) > limit)
        return [
            WorkflowRow(
                id=w.id,
                plan_id=w.plan_id,
                status=w.status,
                nodes=len(w.nodes),
                started_at=w.started_at,
                finished_at=w.finished_at,
            )
            for w in recs[:limit]
        ]

    def fleet(pool: str) -> list[dict[str, Any]]:
        return ctx.reader.nodes(pool=pool, limit=100_000)

    def load(plan_id: str) -> Plan:
        plan = ctx.plans.get(plan_id)
        if plan is None:
            raise HTTPException(404, f"no repair plan {plan_id}")
        if plan.workflow_id and plan.status == "executing":
            wf = ctx.workflows.book.get(plan.workflow_id)
            if wf and wf.status != "running":
                status = "executed" if wf.status == "succeeded" else "failed"
                plan = ctx.plans.update(plan_id, lambda p: p.model_copy(update={"status": status}))
        return plan

    def usable(plan: Plan, verb: str) -> None:
        if plan.dry_run:
            raise HTTPException(
                409, f"plan {plan.id} is a dry run: create it again with dry_run=false to {verb}"
            )
        if plan.workflow_id:
            raise HTTPException(409, f"plan {plan.id} was already executed (workflow {plan.workflow_id})")
        if ctx.now() >= plan.expires_at:
            raise HTTPException(
                410, f"plan {plan.id} expired at {plan.expires_at.isoformat()}; create a new one"
            )

    @r.post("/repair-plans", name="plans.create", response_model=Plan)
    def create(body: PlanRequest, who: Who) -> Plan:
        try:
            content = plan_content(body, fleet(body.pool), ctx.catalog, ctx.policy)
        except PlanError as err:
            raise HTTPException(422, str(err)) from err
        now = ctx.now()
        status = "dry_run" if body.dry_run else "pending_approval"
        plan = Plan(
            **content.model_dump(),
            id="plan-" + uuid.uuid4().hex[:16],
            content_hash=content.digest(),
            created_by=who.actor,
            created_at=now,
            expires_at=now + ctx.plan_ttl,
            status=status,
            request=body,
        )
        ctx.plans.put(plan)
        PLANS.labels(status).inc()
        return plan

    @r.get("/repair-plans/{plan_id}", name="plans.get", response_model=Plan)
    def show(plan_id: PathId) -> Plan:
        return load(plan_id)

    @r.post("/repair-plans/{plan_id}/approve", name="plans.approve", response_model=ApproveResponse)
    def approve(plan_id: PathId, body: ApproveRequest, who: Who) -> ApproveResponse:
        plan = load(plan_id)
        usable(plan, "approve it")
        if plan.approval.approvals_needed == 0:
            raise HTTPException(
                409, f"plan {plan_id} needs no approval ({plan.approval.summary}): execute it directly"
            )
        if plan.approval.role and who.role not in (plan.approval.role, "admin"):
            raise HTTPException(
                403, f"plan {plan_id} needs approval by role {plan.approval.role} or admin, not {who.role}"
            )
        if who.actor == plan.created_by:
            raise HTTPException(
                403,
                f"{who.actor} requested plan {plan_id}: an approver other than the requester must approve",
            )
        if any(a.actor == who.actor for a in plan.approvals):
            raise HTTPException(
                409, f"{who.actor} already approved plan {plan_id}; a second approval needs another person"
            )
        now = ctx.now()
        mine = Approval(actor=who.actor, role=who.role, at=now, comment=body.comment)
        plan = ctx.plans.update(
            plan_id, lambda p: p.model_copy(update={"approvals": [*p.approvals, mine], "status": "approved"})
        )
        PLANS.labels("approved").inc()
        token, grant = ctx.approvals.issue(plan.id, plan.content_hash, who.actor, now)
        return ApproveResponse(
            approval_token=token,
            plan_id=plan.id,
            content_hash=plan.content_hash,
            expires_at=grant.expires_at,
            approvals=len(plan.approvals),
            approvals_needed=plan.approval.approvals_needed,
        )

    @r.post("/repair-plans/{plan_id}/execute", name="plans.execute", response_model=ExecuteResponse)
    def execute(plan_id: PathId, body: ExecuteRequest, who: Who) -> ExecuteResponse:
        plan = load(plan_id)
        usable(plan, "execute it")
        try:
            live = plan_content(plan.request, fleet(plan.pool), ctx.catalog, ctx.policy)
        except PlanError as err:
            raise HTTPException(409, f"plan {plan_id} no longer applies: {err}; create a new plan") from err
        if live.digest() != plan.content_hash:
            raise HTTPException(409, f"the fleet changed since plan {plan_id} was made; create a new plan")
        if any(not c.headroom_ok and c.removed_gpus > 0 for c in plan.capacity):
            raise HTTPException(409, f"plan {plan_id} would take pool {plan.pool} below its healthy minimum")
        if body.rollback_policy == "none":
            raise HTTPException(
                422,
                "rollback_policy none is not available: the actuator stage runs the playbook the guard's "
                "decision names, rollback included; execute with the default (on_failure)",
            )
        rule = plan.approval
        canary = rule.kind == "canary_list" and not rule.token_required
        if rule.token_required or (who.initiator == "agent" and not canary):
            need = max(rule.approvals_needed, 1)
            have = len(plan.approvals)
            if have < need:
                raise HTTPException(
                    403,
                    f"plan {plan_id} has {have} of {need} approval(s) it needs ({rule.summary}"
                    f"{_off_canary(plan)}); an approver runs `breakfix approve {plan_id}`",
                )
            if not body.approval_token:
                raise HTTPException(
                    403,
                    f"plan {plan_id} is approved but execution needs the approval token the approver "
                    "received: pass it with --approval-token",
                )
            try:
                ctx.approvals.redeem(body.approval_token, plan.id, plan.content_hash, ctx.now())
            except TokenRefused as err:
                raise HTTPException(err.status, str(err)) from err

        def claim(p: Plan) -> Plan:
            if p.workflow_id:
                raise HTTPException(409, f"plan {plan_id} was already executed (workflow {p.workflow_id})")
            return p.model_copy(update={"workflow_id": "pending", "status": "executing"})

        ctx.plans.update(plan_id, claim)
        PLANS.labels("executing").inc()
        # admin holds every role: its approval counts as the playbook's role
        role = plan.approval.role
        approvers = tuple((a.actor, role if role and a.role == "admin" else a.role) for a in plan.approvals)
        wf_id = ctx.workflows.start(plan, approvers, who.actor, body.concurrency, body.rollback_policy)
        ctx.plans.update(plan_id, lambda p: p.model_copy(update={"workflow_id": wf_id}))
        ctx.approvals.spend_plan(plan_id)
        return ExecuteResponse(workflow_id=wf_id, plan_id=plan_id)

    @r.get("/workflows/{workflow_id}", name="workflows.get", response_model=dict[str, Any])
    def workflow(workflow_id: PathId) -> dict[str, Any]:
        wf = ctx.workflows.get(workflow_id)
        if wf is None:
            raise HTTPException(404, f"no workflow {workflow_id}")
        return wf

    return r
