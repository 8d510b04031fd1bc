"""The levers: kill switch (global, per pool), per-class mode, decision approvals, breaker reset.
Each is a :class:`~schemas.control.ControlMessage` on the compacted control topic."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from breakfix.api.auth import principal
from breakfix.api.context import ApiContext
from breakfix.api.errors import ERRORS
from breakfix.api.levers_read import LeverBook
from breakfix.api.plans import Name
from breakfix.api.state import StoreStateReader
from breakfix.api.tokens import Principal
from schemas.control import ControlKind
from schemas.decision import ActionKind
from schemas.vocab import GLOBAL, FailureClass, Scope

Who = Annotated[Principal, Depends(principal)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class KillSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool
    pool: Name | None = None
    reason: Reason


class ModeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_class: FailureClass
    mode: Literal["shadow", "recommend", "auto"]
    reason: Reason


class DecisionApproval(BaseModel):
    """One person's approval of one held decision. ``node``, ``failure_class`` and ``action`` are
    what the approver believes they approve: when given they must match the recorded decision."""

    model_config = ConfigDict(extra="forbid")

    decision_id: Name
    node: Name | None = None
    failure_class: FailureClass | None = None
    action: ActionKind | None = None
    reason: Reason


class BreakerReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Literal["discard_backlog", "resume"]
    reason: Reason


class KillSwitchState(BaseModel):
    global_: bool = Field(alias="global")
    pools: dict[str, bool]

    model_config = ConfigDict(populate_by_name=True)


class Published(BaseModel):
    id: str
    key: str
    kind: str
    scope: str
    value: dict[str, Any]


class Lever(BaseModel):
    key: str
    kind: str
    scope: str
    value: dict[str, Any]
    actor: str
    reason: str
    time: datetime


def _held_decision(ctx: ApiContext, body: DecisionApproval) -> dict[str, Any]:
    """The recorded decision ``body`` approves; refused unless it exists, matches what the approver
    named, and was held for a person's approval."""
    rows = ctx.reader.decisions(node=body.node or "", limit=10_000)
    found = next((d for d in rows if d["id"] == body.decision_id), None)
    if found is None:
        where = f" for node {body.node}" if body.node else ""
        raise HTTPException(
            404, f"no decision {body.decision_id}{where}: `breakfix decisions --node NODE` lists a node's"
        )
    named = {"node": body.node, "failure_class": body.failure_class, "action": body.action}
    differs = {k: v for k, v in named.items() if v is not None and str(v) != str(found[k])}
    if differs:
        said = ", ".join(f"{k} {v}" for k, v in differs.items())
        actual = f"{found['node']}, {found['failure_class']}, {found['action']}"
        raise HTTPException(
            409, f"decision {body.decision_id} is {actual}, not {said}: an approval covers only what it names"
        )
    if "approval" not in (found.get("guard_failed") or []):
        why = (
            "it is already executable"
            if found.get("executable")
            else "it was held by " + (", ".join(found.get("guard_failed") or []) or "its mode")
        )
        raise HTTPException(409, f"decision {body.decision_id} does not wait for an approval: {why}")
    return found


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter(responses=ERRORS)
    reader = ctx.reader
    book = (
        LeverBook(reader.store, reader.lock)
        if isinstance(reader, StoreStateReader)
        else LeverBook(None, threading.Lock())
    )

    def send(kind: ControlKind, scope: str, value: dict[str, Any], who: Principal, reason: str) -> Published:
        msg, offset = ctx.control.send(kind, scope, value, who, reason, ctx.now())
        book.published(msg, offset)
        return Published(id=msg.id, key=msg.key, kind=msg.kind.value, scope=msg.scope, value=msg.value)

    @r.get("/killswitch", name="killswitch.get", response_model=KillSwitchState, response_model_by_alias=True)
    def killswitch() -> dict[str, Any]:
        return ctx.control.state.snapshot()

    @r.get("/levers", name="levers.get", response_model=list[Lever])
    def levers(kind: ControlKind | None = None) -> list[dict[str, Any]]:
        """The latest value of every lever set (kill switches, modes, exclusions, emergency,
        approvals, breaker resets), optionally of one ``kind``."""
        return book.latest(kind.value if kind else "")

    @r.post("/killswitch", name="killswitch.set", response_model=Published)
    def set_killswitch(body: KillSwitch, who: Who) -> Published:
        return send(
            ControlKind.KILLSWITCH,
            str(Scope.pool(body.pool) if body.pool else GLOBAL),
            {"on": body.on},
            who,
            body.reason,
        )

    @r.post("/modes", name="modes.set", response_model=Published)
    def set_mode(body: ModeChange, who: Who) -> Published:
        if body.mode == "auto" and body.failure_class.value not in ctx.policy.auto_allowed:
            raise HTTPException(
                422,
                f"mode auto is not allowed for {body.failure_class.value} by policy "
                f"(auto_allowed: {ctx.policy.auto_allowed}); use shadow or recommend",
            )
        scope = str(Scope.failure_class(body.failure_class))
        return send(ControlKind.MODE, scope, {"mode": body.mode}, who, body.reason)

    @r.post("/approvals", name="approvals.create", response_model=Published)
    def approve_decision(body: DecisionApproval, who: Who) -> Published:
        """Approve one held decision: bound to its id, failure class and action, expiring after the
        approval TTL (default 30 min), and spent with that decision's one run (a decision id runs at
        most once: it is the actuators' idempotency key)."""
        held = _held_decision(ctx, body)
        value = {
            "node": held["node"],
            "failure_class": held["failure_class"],
            "action": held["action"],
            "approved": True,
            "expires_at": (ctx.now() + ctx.approvals.ttl).isoformat(),
        }
        return send(ControlKind.APPROVAL, str(Scope.decision(body.decision_id)), value, who, body.reason)

    @r.post("/breaker/reset", name="breaker.reset", response_model=Published)
    def reset_breaker(body: BreakerReset, who: Who) -> Published:
        backlog = "resume" if body.resolution == "resume" else "discard"  # the guard reads value.backlog
        value = {"resolution": body.resolution, "backlog": backlog}
        return send(ControlKind.BREAKER_RESET, str(GLOBAL), value, who, body.reason)

    return r
