"""``breakfix audit list`` and ``breakfix audit replay``: who did what, and doing it again yourself.

Every API call's audit record carries the equivalent ``breakfix`` command line (``params.cli``).
Replay runs that line through this CLI with YOUR server and token, so an operator can repeat exactly
what an agent did over MCP, under their own role and their own audit record. Only lines that are API
calls are run (``breakfix.api.cli_line.through_api``): the API judges the call again under the
replayer's role, and nothing reaches the store but through it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import typer

from breakfix.api.cli_line import through_api
from breakfix.cli.common import err_console, fail
from breakfix.cli.ops_common import JSON_OPT, SERVER_OPT, TOKEN_OPT, call, emit_page
from breakfix.opsclient import ApiTarget
from breakfix.opsclient.config import TOKEN_ENV, URL_ENV

audit_app = typer.Typer(
    help="The audit log of every API, CLI and MCP call (`breakfix audit` alone = `audit list`).",
    invoke_without_command=True,
)

AUDIT_COLUMNS = ("id", "time", "actor", "role", "initiator", "action", "status", "allowed", "cli")
# Recorded in place of a secret: a replay must bring its own approval, never reuse someone else's.
REDACTED = "<approval-token>"
SINCE_OPT = typer.Option(
    None, "--since", help="Only records after this: a duration (1h, 7d) or an RFC 3339 time."
)


@audit_app.callback()
def audit_default(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, "--actor", help="Only this actor's calls."),
    since: str | None = SINCE_OPT,
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many records, newest first."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Without a subcommand, list (the form audit records use: `breakfix audit --actor A`)."""
    if ctx.invoked_subcommand is None:
        audit_list(actor, since, limit, server, token, as_json)


@audit_app.command("list")
def audit_list(
    actor: str | None = typer.Option(None, "--actor", help="Only this actor's calls."),
    since: str | None = SINCE_OPT,
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many records, newest first."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List audit records: actor, role, initiator (human or agent), what they called and the outcome.

    Example: breakfix audit list --actor triage-agent --limit 20
    """
    page = call(server, token, lambda c: c.audit_page(actor=actor, since=since, limit=limit))
    emit_page(page, as_json, "audit", AUDIT_COLUMNS, row=_flat)


@audit_app.command("replay")
def audit_replay(
    audit_id: str = typer.Argument(..., help="Audit record id (from `breakfix audit list`)."),
    since: str | None = SINCE_OPT,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the command instead of running it."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Re-issue a recorded call with YOUR token (e.g. an agent's MCP call, now under your role).

    Example: breakfix audit replay api-5d0c... --token "$OPERATOR_TOKEN"
    """
    rows = call(server, token, lambda c: c.list_audit(since=since, limit=10_000))
    record = next((r for r in rows if r.get("id") == audit_id), None)
    if record is None:
        fail(
            f"no audit record {audit_id} among the {len(rows)} newest",
            "check the id with `breakfix audit list`",
        )
    line = str((record.get("params") or {}).get("cli") or "")
    args = shlex.split(line)[1:] if line.startswith("breakfix ") else []
    if not args:
        fail(f"audit record {audit_id} ({record.get('action')}) has no replayable command line")
    if not through_api(args):
        # A line recorded by an older version (``breakfix sql QUERY`` ran on the raw store) or
        # written into the store by hand: run it, and a refused DELETE becomes a real one under
        # the replayer's name. Only API calls are replayed, so the API judges them again.
        fail(
            f"audit record {audit_id} names a command that does not go through the API: {line}",
            "run the equivalent API command yourself (e.g. `breakfix sql --api QUERY`), under your token",
        )
    if REDACTED in args:
        fail(
            "this call carried an approval token, which is never recorded",
            f"approve it yourself and run: {line.replace(REDACTED, '$(breakfix approve PLAN_ID)')}",
        )
    if as_json:
        args.append("--json")
    err_console.print(
        f"replaying {audit_id} ({record.get('actor')}, {record.get('initiator')}): {shlex.join(args)}"
    )
    if dry_run:
        typer.echo(shlex.join(["breakfix", *args]))
        return
    raise typer.Exit(_run(args, ApiTarget.resolve(server, token)))


def _run(args: list[str], target: ApiTarget) -> int:
    """Run ``breakfix ARGS`` in this process against ``target``; returns its exit code."""
    from breakfix.cli.main import app  # the root app registers this module: import it late

    command = typer.main.get_command(app)
    with _target_env(target):
        try:
            rc = command.main(args, prog_name="breakfix", standalone_mode=False)
        except click.ClickException as exc:
            fail(
                f"the recorded command no longer parses: {exc.format_message()}",
                "the CLI changed since the call was recorded; run the equivalent command by hand",
            )
    return rc if isinstance(rc, int) else 0


@contextmanager
def _target_env(target: ApiTarget) -> Iterator[None]:
    """Point the replayed command at our server and token, then put the environment back."""
    saved = {k: os.environ.get(k) for k in (URL_ENV, TOKEN_ENV)}
    os.environ[URL_ENV], os.environ[TOKEN_ENV] = target.url, target.token
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "cli": (record.get("params") or {}).get("cli", "")}


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
