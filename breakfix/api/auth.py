"""Authentication, authorisation and auditing of every call, in one middleware.

Order matters: the middleware identifies the caller before anything else, so an unauthenticated
caller gets 401 (never a 422 that reveals the schema); the app-wide :func:`authorize` dependency
runs before the route body is validated and answers 403 naming the roles that may; and every
answer - allowed or refused - is audited with the status it got. The operation of a call is the
matched route's ``name`` (see :mod:`breakfix.api.roles`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from breakfix.api.anonymous import AnonymousFailures
from breakfix.api.audit import CallFacts, Surface
from breakfix.api.bodylimit import BodyLimit
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


def _route(request: Request) -> tuple[str, dict[str, Any]]:
    """The operation (matched route's name) and path parameters, once routing has run."""
    route = request.scope.get("route")
    return str(getattr(route, "name", "") or ""), dict(request.scope.get("path_params") or {})


def authorize(request: Request) -> None:
    """App-wide dependency: the caller's role must allow the route's operation (deny by default:
    a route no role lists is refused to everyone)."""
    if request.url.path.startswith(OPEN_PATHS):
        return
    operation, _ = _route(request)
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None:  # the middleware answers 401 before routing; this is a second lock
        raise HTTPException(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not allowed(who.role, operation):
        need = ", ".join(roles_for(operation)) or "none"
        raise HTTPException(403, f"role {who.role} may not {operation}; needs one of: {need}")


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


def install(app: FastAPI, ctx: ApiContext, max_body_bytes: int) -> None:
    """The auth-and-audit middleware, and outside it the body limit (so it runs first)."""
    anonymous = AnonymousFailures()

    async def refused_anonymous(reason: str, method: str, path: str, status: int) -> None:
        """Counted always; audited as one summary line per minute (breakfix.api.anonymous)."""
        summary = anonymous.note(reason, method, path)
        if summary is None:
            return
        facts = CallFacts(actor="anonymous", role="none", initiator="human", surface="api",
                          operation="anonymous.refused", method=method, path=path, body=b"", status=status,
                          detail=summary.detail(), cli="")  # fmt: skip
        try:
            await run_in_threadpool(ctx.audit.record, facts, ctx.now())
        except Exception:
            log.exception("audit line for refused anonymous requests could not be written")

    async def too_large(method: str, path: str) -> None:
        await refused_anonymous("body_too_large", method, path, 413)

    @app.middleware("http")
    async def authorise_and_audit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith(OPEN_PATHS):
            return await call_next(request)
        body = await request.body()
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        who = ctx.tokens.lookup(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        surface_hdr = request.headers.get(SURFACE_HEADER, "api")
        surface: Surface = surface_hdr if surface_hdr in ("api", "cli", "mcp") else "api"  # type: ignore[assignment]
        request.state.audit_detail = ""
        if who is None:
            await refused_anonymous("unauthenticated", request.method, path, 401)
            return JSONResponse(
                {"detail": "missing or unknown bearer token: send 'Authorization: Bearer <token>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.principal = who
        try:
            response = await call_next(request)
        except Exception as err:  # audited, then answered as a 500 without internals
            log.exception("unhandled error in %s %s", request.method, path)
            request.state.audit_detail = f"internal error: {type(err).__name__}"
            response = JSONResponse({"detail": "internal error; see the API server log"}, status_code=500)
        operation, path_params = _route(request)
        facts = CallFacts(
            actor=who.actor,
            role=who.role,
            initiator=who.initiator,  # type: ignore[arg-type]
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

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, refused=too_large)
