"""The FastAPI application: routes over an injected :class:`~breakfix.api.context.ApiContext`,
bearer auth + roles + audit in one middleware, Prometheus metrics at ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer
from prometheus_client import make_asgi_app
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from breakfix.api import (
    auth,
    errors,
    routes_control,
    routes_machines,
    routes_plans,
    routes_read,
    routes_tickets,
)
from breakfix.api import metrics as api_metrics
from breakfix.api.context import ApiContext

DESCRIPTION = """Operator surface of gpu-breakfix: nodes and their evidence, decisions, repair plans
(approval tokens bound to the plan's content hash, single use, expiring), workflows, the control
levers (kill switch, modes, approvals, breaker), NICo-style instance release and health overrides,
tickets and read-only SQL. Every call, allowed or refused, is audited."""

# Declares the bearer scheme in the OpenAPI document; the middleware (breakfix.api.auth) enforces it.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")


class _Asgi:
    """Starlette treats a plain function endpoint as request -> response; wrapping prometheus'
    ASGI function in an object makes ``Route`` hand it the raw ASGI call (so /metrics needs no
    redirect to /metrics/)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


MAX_BODY_BYTES = 1 << 20
"""The largest request body (1 MiB): every operation's body is a few hundred bytes; ad-hoc SQL and
plan bodies stay far below it."""


def create_app(ctx: ApiContext, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """Before the first request: catch up with the control topic (levers set elsewhere), then
        follow the running workflows (a previous process's included) until shutdown."""
        if ctx.follower is not None:
            await ctx.follower.start()
        ctx.workflows.run_in_background()
        try:
            yield
        finally:
            ctx.workflows.stop()
            if ctx.follower is not None:
                await ctx.follower.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="breakfix operator API",
        version="1",
        description=DESCRIPTION,
        dependencies=[Depends(_bearer), Depends(auth.authorize)],
    )

    @app.get("/healthz", include_in_schema=True)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for module in (routes_read, routes_plans, routes_control, routes_machines, routes_tickets):
        app.include_router(module.router(ctx))
    api_metrics.initialise()
    metrics = make_asgi_app()
    app.router.routes.append(Route("/metrics", endpoint=_Asgi(metrics), include_in_schema=False))
    app.mount("/metrics", metrics)  # also answers /metrics/ and query strings prometheus adds
    errors.install(app)
    auth.install(app, ctx, max_body_bytes)
    app.state.ctx = ctx
    return app
