"""What went wrong talking to the operator API, and what the user should do next.

The API answers every refusal with ``{"detail": ...}``; the CLI and the MCP tools show that message as
is, followed by a hint chosen from the status code, so a user never reads a traceback to learn that
their token is missing or the server is not running.
"""

from __future__ import annotations

from typing import Any

_HINTS: dict[int, str] = {
    400: "fix the request as the message says",
    401: "set BREAKFIX_API_TOKEN (or pass --token) to a token the API knows",
    403: "use a token of a role named above (--token or BREAKFIX_API_TOKEN; on the local stack "
    "BREAKFIX_AS=<role>)",
    404: "check the id: `breakfix nodes`, `breakfix audit list` show what exists",
    409: "the object changed or was already used: fetch it again and retry with its current state",
    410: "the approval expired: run `breakfix approve PLAN_ID` again",
    422: "fix the fields named above (see `--help` for the accepted values)",
    429: "slow down and retry",
}


class ApiError(Exception):
    """A refused or failed API call: ``status`` is None when no HTTP answer came back at all."""

    def __init__(self, detail: str, *, status: int | None = None, hint: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.hint = hint

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status is not None else ""
        suffix = f" ({self.hint})" if self.hint else ""
        return f"{prefix}{self.detail}{suffix}"


_APPROVAL_HINT = (
    "an approver (another person) runs `breakfix approve PLAN_ID` and you pass the token it prints to "
    "`breakfix plan execute PLAN_ID --token TOKEN`"
)


def hint_for(status: int, detail: str = "") -> str:
    """The next step for a status code (and, for a 403, for what was refused: a role or a missing
    approval); 5xx points at the server's log because the caller cannot fix it."""
    if status >= 500:
        return "the API failed: see the log of `breakfix serve`"
    if status == 403 and "approv" in detail and "may not" not in detail:
        return _APPROVAL_HINT
    return _HINTS.get(status, "")


def detail_text(body: Any, fallback: str) -> str:
    """Flatten the API's ``detail`` (a string, or FastAPI's list of field errors) into one line.

    >>> detail_text({"detail": "plan p1 expired"}, "")
    'plan p1 expired'
    >>> detail_text({"detail": [{"loc": ["body", "pool"], "msg": "Field required"}]}, "")
    'body.pool: Field required'
    >>> detail_text("not json", "HTTP 502")
    'HTTP 502'
    """
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc", ()))
                parts.append(f"{loc}: {err.get('msg', '')}" if loc else str(err.get("msg", "")))
            else:
                parts.append(str(err))
        return "; ".join(parts)
    if detail is not None:
        return str(detail)
    return fallback
