"""How a tool reaches the API: with the calling agent's own token, through the shared ops client.

Over streamable HTTP each agent sends its bearer token to the MCP server and we pass it on
unchanged, so the API (not this process) decides who it is; over stdio the server runs with the
token it was started with. Either way the API sees an agent-role caller, applies the same role checks
as for the CLI, and writes the audit record with initiator = agent and surface = mcp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx
from mcp.server.mcpserver.exceptions import ToolError

from breakfix.mcptools.autonomy import POLICIES
from breakfix.opsclient import ApiError, ApiTarget, OpsClient

T = TypeVar("T")


def bearer(headers: Mapping[str, str] | None) -> str:
    """The token in an ``Authorization: Bearer ...`` header, or "" when there is none.

    >>> bearer({"authorization": "Bearer tok-agent"})
    'tok-agent'
    >>> bearer(None)
    ''
    """
    value = ""
    for key, val in (headers or {}).items():
        if key.lower() == "authorization":
            value = val
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class ApiBackend:
    def __init__(self, target: ApiTarget, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self._transport = transport

    def call(self, tool: str, headers: Mapping[str, str] | None, fn: Callable[[OpsClient], T]) -> T:
        """Run ``fn`` against the API as the caller; a refusal becomes a tool error the agent can read."""
        target = ApiTarget(self.target.url, bearer(headers) or self.target.token)
        with OpsClient(target, surface="mcp", transport=self._transport) as client:
            try:
                return fn(client)
            except ApiError as exc:
                raise ToolError(refusal(tool, exc)) from None


def refusal(tool: str, exc: ApiError) -> str:
    """The API's message, then the human step that unblocks the agent (a 403, or any refusal about an
    approval) or else the generic next step for the status."""
    status = f"HTTP {exc.status}" if exc.status is not None else "no answer"
    text = f"{tool} refused ({status}): {exc.detail}"
    human = POLICIES[tool].human_step
    needs_person = exc.status == 403 or (exc.status is not None and "approv" in exc.detail.lower())
    if human and needs_person:
        return f"{text}. This needs a person: {human}."
    return f"{text}. Next: {exc.hint}." if exc.hint else text
