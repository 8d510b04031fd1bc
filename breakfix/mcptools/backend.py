"""How a tool reaches the API: with the calling agent's own token, through the shared ops client.

Over streamable HTTP each agent sends its bearer token to the MCP server and we pass it on
unchanged, so the API (not this process) decides who it is; a client that sent none is refused, never
served as the server's own identity (whoever reaches the port would otherwise act as it). Over stdio
the server runs with the token it was started with (its one client is the process that spawned it).
Either way the API sees an agent-role caller, applies the same role checks
as for the CLI, and writes the audit record with initiator = agent and surface = mcp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx
from mcp.server.mcpserver.exceptions import ToolError

from breakfix.mcptools.autonomy import policies
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


_AGENT_HINTS: dict[int, str] = {
    400: "change the arguments as the message says and call the tool again",
    401: "this MCP server has no API token the API accepts: a person must configure one "
    "(`breakfix mcp --token-file FILE`, BREAKFIX_API_TOKEN_FILE, or `breakfix up`'s context file); "
    "over HTTP, send your own `Authorization: Bearer <token>` header",
    403: "your token's role may not do this: ask a person to do it or to give you a token of a "
    "role the message names",
    404: "the id does not exist: look it up first (list_nodes, read_ticket, get_repair_plan)",
    409: "the object changed or was already used: read it again (get_repair_plan, get_workflow) "
    "and act on its current state",
    410: "it expired: create it again (create_repair_plan) and ask a person for a new approval",
    422: "the arguments are not valid: fix the field the message names; allowed values are in this "
    "tool's input schema and in list_runbooks",
    429: "wait a minute and call again",
}


def agent_hint(status: int | None) -> str:
    """What an agent can do next after a refusal, in terms of the tools it has (never CLI flags)."""
    if status is None:
        return "the API did not answer: a person must check that `breakfix serve` (or `breakfix up`) runs"
    if status >= 500:
        return "the API failed: report the message to a person; retrying will not help"
    return _AGENT_HINTS.get(status, "")


class ApiBackend:
    """``per_client``: use only the token each request carries (MCP over HTTP); otherwise the
    server's own (stdio)."""

    def __init__(
        self, target: ApiTarget, transport: httpx.BaseTransport | None = None, per_client: bool = False
    ) -> None:
        self.target = target
        self.per_client = per_client
        self._transport = transport

    def call(self, tool: str, headers: Mapping[str, str] | None, fn: Callable[[OpsClient], T]) -> T:
        """Run ``fn`` against the API as the caller; a refusal becomes a tool error the agent can read."""
        token = bearer(headers) if self.per_client else (bearer(headers) or self.target.token)
        if self.per_client and not token:
            raise ToolError(
                f"{tool} refused: this MCP server acts only with the caller's own token and your request "
                "carried none. Next: send `Authorization: Bearer <your API token>` with every request."
            )
        target = ApiTarget(self.target.url, token)
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
    human = policies()[tool].human_step
    needs_person = exc.status == 403 or (exc.status is not None and "approv" in exc.detail.lower())
    if human and needs_person:
        return f"{text}. This needs a person: {human}."
    hint = agent_hint(exc.status)
    return f"{text}. Next: {hint}." if hint else text
