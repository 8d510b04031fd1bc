"""Error answers: always ``{"detail": "<what to fix>"}``, a string, also for validation errors, and
the OpenAPI document says so (so clients and schemathesis see the shape they get)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (401, "missing or unknown bearer token"),
        (403, "the caller's role may not do this, or an approval is missing or invalid"),
        (404, "no such object"),
        (409, "conflict with the object's state (already executed, token used, plan changed)"),
        (410, "expired (plan or approval token)"),
    )
}


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_message(err: RequestValidationError) -> str:
    return "; ".join(f"{_where(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in err.errors())


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        request.state.audit_detail = str(exc.detail)
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = validation_message(exc)
        request.state.audit_detail = message
        return JSONResponse({"detail": message}, status_code=422)

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        comps = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in comps:
            comps["HTTPValidationError"] = ErrorBody.model_json_schema()
            comps.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
