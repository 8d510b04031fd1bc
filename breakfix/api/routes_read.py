"""Read routes: nodes with state and evidence, decisions, the audit log, the runbook catalog, SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from breakfix.api.context import ApiContext
from breakfix.api.errors import ERRORS
from breakfix.api.paging import more
from breakfix.api.params import PathId
from schemas.common import NodeState
from store.base import StoreError

Limit = Annotated[int, Query(ge=1, le=10_000)]


class NodeRow(BaseModel):
    node: str
    pool: str
    rack: str
    sku: str
    gpus: int
    state: str
    since: datetime | None = None
    failure_class: str | None = None
    confidence: float | None = None
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="The labels of the node's latest node.inventory report (what plan selectors match).",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _no_labels(cls, v: object) -> object:
        """A node whose inventory reports carried no labels has none (the store answers NULL)."""
        return {} if v is None else v


class NodeDetail(NodeRow):
    evidence: list[dict[str, Any]]
    decisions: list[dict[str, Any]]


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, Field(min_length=1, max_length=20_000)]
    limit: Annotated[int, Field(ge=1, le=100_000)] = 1000


class SqlResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter(responses=ERRORS)

    @r.get("/nodes", name="nodes.list", response_model=list[NodeRow])
    def list_nodes(
        response: Response, pool: str = "", state: NodeState | None = None, limit: Limit = 1000
    ) -> list[dict[str, Any]]:
        rows = ctx.reader.nodes(pool=pool, state=state.value if state else "", limit=limit + 1)
        more(response, len(rows) > limit)
        return rows[:limit]

    @r.get("/nodes/{node}", name="nodes.get", response_model=NodeDetail)
    def get_node(node: PathId) -> dict[str, Any]:
        found = ctx.reader.node(node)
        if found is None:
            raise HTTPException(404, f"node {node} is not in the inventory")
        return found

    @r.get("/decisions", name="decisions.list", response_model=list[dict[str, Any]])
    def list_decisions(
        response: Response, node: str = "", since: datetime | None = None, limit: Limit = 100
    ) -> list[dict[str, Any]]:
        rows = ctx.reader.decisions(node=node, since=since, limit=limit + 1)
        more(response, len(rows) > limit)
        return rows[:limit]

    @r.get("/audit", name="audit.list", response_model=list[dict[str, Any]])
    def list_audit(
        response: Response, since: datetime | None = None, actor: str = "", limit: Limit = 100
    ) -> list[dict[str, Any]]:
        rows = ctx.reader.audit(since=since, actor=actor, limit=limit + 1)
        more(response, len(rows) > limit)
        return rows[:limit]

    @r.get("/runbooks", name="runbooks.list", response_model=list[dict[str, Any]])
    def runbooks() -> list[dict[str, Any]]:
        return [
            {
                "name": p.name,
                "version": p.version,
                "description": p.description,
                "classes": [c.value for c in p.failure_classes],
                "actions": [a.value for a in p.actions],
                "scope": p.scope,
                "mutating": p.mutating,
                "approval": p.approval.model_dump(),
                "steps": [s.model_dump() for s in p.steps],
                "rollback": [s.model_dump() for s in p.rollback],
            }
            for p in sorted(ctx.catalog.playbooks.values(), key=lambda p: p.name)
        ]

    @r.post("/sql", name="sql.query", response_model=SqlResult)
    async def sql(body: SqlRequest) -> dict[str, Any]:
        try:
            return await run_in_threadpool(ctx.reader.sql, body.query, body.limit)
        except (ValueError, StoreError) as err:
            raise HTTPException(
                422, str(err).splitlines()[0][:1000] if str(err) else "query refused"
            ) from err

    return r
