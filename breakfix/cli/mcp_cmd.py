"""``breakfix mcp``: serve the operator API's capabilities as MCP tools for agent frameworks."""

from __future__ import annotations

import typer

from breakfix.cli.common import fail
from breakfix.cli.ops_common import SERVER_OPT, TOKEN_OPT


def mcp(
    transport: str = typer.Option("stdio", "--transport", help="stdio (spawned by the agent) or http."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (http)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on (http)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Serve MCP tools that call the operator API with an agent token (reads, tickets, repair plans).

    Over http the endpoint is http://HOST:PORT/mcp and each agent may send its own bearer token.

    Example: BREAKFIX_API_TOKEN=$AGENT_TOKEN breakfix mcp --transport http --port 8765
    """
    from breakfix.mcptools import serve
    from breakfix.opsclient import ApiTarget

    if transport not in ("stdio", "http"):
        fail(f"unknown transport {transport!r}", "use stdio or http")
    serve(ApiTarget.resolve(server, token), "stdio" if transport == "stdio" else "http", host, port)


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
