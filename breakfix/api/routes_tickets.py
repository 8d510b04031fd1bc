"""Tickets: read, file (one open ticket per node; later findings become comments), close (humans only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from actuators.base import PermanentError, Refused
from actuators.tickets import Enrichment, Ticket, TicketDraft
from breakfix.api.auth import principal
from breakfix.api.context import ApiContext
from breakfix.api.errors import ERRORS
from breakfix.api.params import PathId
from breakfix.api.plans import Name
from breakfix.api.tokens import Principal

Who = Annotated[Principal, Depends(principal)]


class TicketCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: Name
    summary: Annotated[str, Field(min_length=1, max_length=255)]
    details: Annotated[str, Field(max_length=16_000)] = ""


class TicketClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Annotated[str, Field(min_length=1, max_length=2000)]


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter(responses=ERRORS)
    backend = ctx.tickets.backend

    def get(ticket_id: PathId) -> Ticket:
        try:
            return backend.get(ticket_id)
        except PermanentError as err:
            raise HTTPException(404, f"no ticket {ticket_id}") from err

    @r.get("/tickets", name="tickets.list", response_model=list[Ticket])
    def list_tickets(
        node: Annotated[str | None, Query(min_length=1, max_length=253)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[Ticket]:
        """With ``node``: its open ticket (at most one: later findings become comments); without:
        the ``limit`` most recent tickets, open or closed, newest first."""
        if node is None:
            return backend.recent(limit)
        found = backend.find_open(node)
        return [found] if found else []

    @r.get("/tickets/{ticket_id}", name="tickets.get", response_model=Ticket)
    def show(ticket_id: PathId) -> Ticket:
        return get(ticket_id)

    @r.post("/tickets", name="tickets.create", response_model=dict[str, Any])
    def create(body: TicketCreate, who: Who) -> dict[str, Any]:
        pool = None
        placement = ctx.reader.node(body.node, limit=1)
        if placement is not None:
            pool = placement["pool"]
        draft = TicketDraft(
            summary=body.summary,
            description=body.details,
            enrichment=Enrichment(
                node=body.node,
                pool=pool,
                rack=placement and placement["rack"],
                sku=placement and placement["sku"],
            ),
            labels=(f"opened-by-{who.initiator}",),
        )
        filed = ctx.tickets.file(draft, author=who.actor)
        if filed.created:
            return {"ticket": filed.ticket.model_dump(mode="json"), "created": True}
        # One open ticket per node: the caller's text became a comment on it. Answer the ticket as
        # it is now (comment included) and say so, so an agent knows its summary was kept.
        ticket = get(filed.ticket.key)
        return {
            "ticket": ticket.model_dump(mode="json"),
            "created": False,
            "appended": {"summary": body.summary, "details": body.details},
            "note": f"{body.node} already had open ticket {ticket.key}: your summary and details were "
            "added to it as a comment",
        }

    @r.post("/tickets/{ticket_id}/close", name="tickets.close", response_model=Ticket)
    def close(ticket_id: PathId, body: TicketClose, who: Who) -> Ticket:
        get(ticket_id)
        try:
            ctx.tickets.close(ticket_id, body.resolution, who.actor, who.initiator)  # type: ignore[arg-type]
        except Refused as err:
            raise HTTPException(403, err.detail) from err
        return get(ticket_id)

    return r
