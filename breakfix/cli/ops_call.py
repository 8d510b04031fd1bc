"""``breakfix call OPERATION --arg key=value``: any operation of the API by name.

Every operation the API serves is declared once (``breakfix.api.operations``); this verb reaches each
of them, so an operation added there is usable from the shell, and replayable from its audit
record, before anyone writes a dedicated verb for it. Values are JSON where they parse as JSON
(``--arg dry_run=false``, ``--arg nodes='["n1"]'``), text otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from breakfix.cli.common import console, fail
from breakfix.cli.ops_common import SERVER_OPT, TOKEN_OPT, table
from breakfix.cli.ops_common import call as api_call


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _args(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key or not sep:
            fail(f"--arg {pair!r}", "write --arg KEY=VALUE")
        out[key] = _value(value)
    return out


def call(
    operation: str = typer.Argument("", help="Operation name, e.g. nodes.list (see --list)."),
    arg: list[str] = typer.Option([], "--arg", help="KEY=VALUE: a path, query or body field (repeatable)."),
    list_: bool = typer.Option(False, "--list", help="List every operation: method, path, roles."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Call one API operation by name and print its JSON answer.

    Example: breakfix call nodes.get --arg node=gpu-a-r01-n03
    Example: breakfix call killswitch.set --arg on=true --arg pool=train-a --arg reason='bad driver'
    """
    from breakfix.api.operations import OPERATIONS

    if list_ or not operation:
        rows = [
            {"operation": op.name, "method": op.method, "path": op.path,
             "roles": ", ".join(sorted(op.roles | {"admin"}))}
            for op in OPERATIONS.values()
        ]  # fmt: skip
        console.print(table(f"operations ({len(rows)})", rows, ("operation", "method", "path", "roles")))
        return
    args = _args(arg)
    answer = api_call(server, token, lambda c: c.call(operation, args))
    console.print_json(json.dumps(answer, default=str))


def register(app: typer.Typer) -> None:
    app.command("call")(call)
