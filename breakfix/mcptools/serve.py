"""Run the MCP server on stdio (an agent framework spawns it) or streamable HTTP (agents connect)."""

from __future__ import annotations

from typing import Literal

from breakfix.mcptools.server import build_server
from breakfix.opsclient import ApiTarget

Transport = Literal["stdio", "http"]


def serve(
    target: ApiTarget, transport: Transport = "stdio", host: str = "127.0.0.1", port: int = 8765
) -> None:
    """Block serving MCP until the client disconnects (stdio) or the process is stopped (http).

    Over HTTP the endpoint is ``http://HOST:PORT/mcp``; each agent sends its own
    ``Authorization: Bearer`` token, which is passed on to the API; a request without one is refused
    (the server's own token is never used over HTTP).
    """
    server = build_server(target, per_client=transport == "http")
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
