"""Authentication, authorisation and auditing of every call, in one middleware.

Order matters: the caller is identified and checked *before* FastAPI parses the body, so an
unauthenticated caller gets 401 (never a 422 that reveals the schema), a caller without the role
gets 403 naming the roles that may, and every answer - allowed or refused - is audited with the
status it got. The operation of a call is the matched route's ``name`` (see :mod:`breakfix.api.roles`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Match

from breakfix.api.audit import CallFacts, Surface
from breakfix.api.cli_line import cli_line
from breakfix.api.context import ApiContext
from breakfix.api.roles import allowed, roles_for
from breakfix.api.tokens import Principal

log = logging.getLogger(__name__)
OPEN_PATHS = ("/healthz", "/metrics", "/openapi.json", "/docs", "/redoc")
SURFACE_HEADER = "x-breakfix-surface"


def principal(request: Request) -> Principal:
    """The authenticated caller (set by the middleware before any route runs)."""
    return cast(Principal, request.state.principal)


def _operation(app: FastAPI, request: Request) -> tuple[str, dict[str, Any]]:
    for route in app.router.routes:
        match, child = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "name", "")), dict(child.get("path_params", {}))
    return "", {}


def _args(path_params: dict[str, Any], request: Request, body: bytes) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query_params)
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = {}
    if isinstance(parsed, dict):
        args.update(parsed)
    args.update(path_params)
    return args


def install(app: FastAPI, ctx: ApiContext) -> None:
    @app.middleware("http")
    async def authorise_and_audit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith(OPEN_PATHS):
            return await call_next(request)
        operation, path_params = _operation(app, request)
        body = await request.body()
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        who = ctx.tokens.lookup(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        surface_hdr = request.headers.get(SURFACE_HEADER, "api")
        surface: Surface = surface_hdr if surface_hdr in ("api", "cli", "mcp") else "api"  # type: ignore[assignment]
        request.state.audit_detail = ""
        if who is None:
            response: Response = JSONResponse(
                {"detail": "missing or unknown bearer token: send 'Authorization: Bearer <token>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            request.state.audit_detail = "unauthenticated"
        elif operation and not allowed(who.role, operation):
            need = ", ".join(roles_for(operation))
            detail = f"role {who.role} may not {operation}; needs one of: {need}"
            response = JSONResponse({"detail": detail}, status_code=403)
            request.state.audit_detail = detail
        else:
            request.state.principal = who
            try:
                response = await call_next(request)
            except Exception as err:  # audited, then answered as a 500 without internals
                log.exception("unhandled error in %s %s", request.method, path)
                request.state.audit_detail = f"internal error: {type(err).__name__}"
                response = JSONResponse({"detail": "internal error; see the API server log"}, status_code=500)
        facts = CallFacts(
            actor=who.actor if who else "anonymous",
            role=who.role if who else "none",
            initiator=who.initiator if who else "human",  # type: ignore[arg-type]
            surface=surface,
            operation=operation or "unknown",
            method=request.method,
            path=path,
            body=body,
            status=response.status_code,
            detail=str(getattr(request.state, "audit_detail", "")),
            cli=cli_line(operation, _args(path_params, request, body)) if operation else "",
        )
        try:
            await run_in_threadpool(ctx.audit.record, facts, ctx.now())
        except Exception:  # the answer stands (the call already happened); the gap is logged loudly
            log.exception("audit record for %s %s could not be written", request.method, path)
        return response
