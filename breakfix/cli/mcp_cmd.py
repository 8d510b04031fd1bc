"""``breakfix mcp``: serve the operator API's capabilities as MCP tools for agent frameworks."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import fail
from breakfix.cli.ops_common import SERVER_OPT, TOKEN_OPT
from breakfix.opsclient.config import TOKEN_FILE_ENV


def mcp(
    transport: str = typer.Option("stdio", "--transport", help="stdio (spawned by the agent) or http."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (http)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on (http)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    token_file: Path | None = typer.Option(
        None, "--token-file", help=f"stdio: read the API token from this file (else ${TOKEN_FILE_ENV})."
    ),
) -> None:
    """Serve MCP tools that call the operator API (reads, tickets, repair plans).

    stdio: the agent framework spawns this command, often without your environment; name the API
    and the token in its configuration: --server URL --token-file FILE (or the context file
    `breakfix up` writes). http: the endpoint is http://HOST:PORT/mcp and each agent sends its own
    bearer token; a request without one is refused (this server's token is never lent out).

    Example: breakfix mcp --server http://127.0.0.1:8080 --token-file ~/.breakfix/agent.token
    """
    from breakfix.mcptools import serve
    from breakfix.opsclient import ApiTarget
    from breakfix.opsclient.config import TokenFileError

    if transport not in ("stdio", "http"):
        fail(f"unknown transport {transport!r}", "use stdio or http")
    if transport == "http" and (token or token_file):
        fail("over http each agent sends its own token", "drop --token/--token-file for --transport http")
    try:
        target = ApiTarget.resolve(server, token, token_file)
    except TokenFileError as err:
        fail(str(err), "write the agent's API token to that file (one line, mode 0600)")
    if transport == "http":
        target = ApiTarget(target.url, "")
    serve(target, "stdio" if transport == "stdio" else "http", host, port)


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
