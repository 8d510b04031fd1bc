"""``breakfix run --role mcp`` (also ``breakfix mcp``): the operator API's capabilities as MCP tools
for agent frameworks."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import fail
from breakfix.cli.ops_common import SERVER_OPT, TOKEN_OPT
from breakfix.cli.role_common import PRINT_OPT, SETTINGS_OPT, settle
from breakfix.opsclient.config import TOKEN_FILE_ENV
from breakfix.roles.settings import McpSettings


def mcp(
    transport: str | None = typer.Option(
        None, "--transport", help="stdio (spawned by the agent, the default) or http."
    ),
    host: str | None = typer.Option(None, "--host", help="Address to listen on (http; default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (http; default 8765)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    token_file: Path | None = typer.Option(
        None, "--token-file", help=f"stdio: read the API token from this file (else ${TOKEN_FILE_ENV})."
    ),
    settings_file: Path | None = SETTINGS_OPT,
    print_settings: bool = PRINT_OPT,
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

    if transport is not None and transport not in ("stdio", "http"):
        fail(f"unknown transport {transport!r}", "use stdio or http")
    s = settle(
        McpSettings,
        settings_file,
        print_settings,
        transport=transport,
        host=host,
        port=port,
        api_url=server,
        api_token=token,
        api_token_file=token_file,
    )
    if s.transport == "http" and (token or token_file):
        fail("over http each agent sends its own token", "drop --token/--token-file for --transport http")
    try:
        target = ApiTarget.resolve(
            s.api_url, s.api_token.get_secret_value() if s.api_token else None, s.api_token_file
        )
    except TokenFileError as err:
        fail(str(err), "write the agent's API token to that file (one line, mode 0600)")
    if s.transport == "http":
        target = ApiTarget(target.url, "")
    serve(target, s.transport, s.host, s.port)


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
