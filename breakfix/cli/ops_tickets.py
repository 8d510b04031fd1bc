"""``breakfix decisions``, ``breakfix runbooks`` and ``breakfix ticket list|show|create|close``.

The read-and-ticket half of what agents reach through MCP, so every agent call has a command an
operator can type (and ``breakfix audit replay`` can run).
"""

from __future__ import annotations

from typing import Any

import typer

from breakfix.cli.common import console, fail
from breakfix.cli.ops_common import (
    JSON_OPT,
    SERVER_OPT,
    TOKEN_OPT,
    call,
    done,
    emit,
    emit_page,
    fields,
    table,
)

ticket_app = typer.Typer(
    help="Incident tickets: list, show, create, close (close needs a human).", no_args_is_help=True
)

DECISION_COLUMNS = ("time", "node", "from_state", "to_state", "failure_class", "confidence", "action", "mode")


def decisions(
    node: str | None = typer.Option(None, "--node", help="Only this node's decisions."),
    since: str | None = typer.Option(
        None, "--since", help="Only decisions after this: a duration (1h, 30m, 7d) or an RFC 3339 time."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List recent decisions (one per node state transition), newest first.

    Example: breakfix decisions --node gpu-00019 --since 1h
    """
    page = call(server, token, lambda c: c.decisions_page(node=node, since=since, limit=limit))
    emit_page(page, as_json, "decisions", DECISION_COLUMNS)


def runbooks(
    name: str | None = typer.Argument(None, help="One runbook's name: show its steps one per line."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List the playbook catalog (name, version, failure classes, approval, steps in order), or show
    one runbook's steps and rollback one per line.

    Example: breakfix runbooks xid-ecc-conditional-drain-gpu-reset
    """
    rows = call(server, token, lambda c: c.list_runbooks())
    if name is not None:
        found = [r for r in rows if r.get("name") == name]
        if not found:
            fail(f"no runbook named {name!r}", "`breakfix runbooks` lists them")
        emit(found[0], as_json, _render_runbook)
        return
    flat = [
        {**r, "approval": approval_text(r.get("approval") or {}, bool(r.get("mutating"))),
         "steps": len(r.get("steps") or [])}
        for r in rows
    ]  # fmt: skip
    cols = ("name", "version", "approval", "steps", "classes")
    emit(rows, as_json, lambda _: console.print(table(f"runbooks ({len(rows)}; `breakfix runbooks NAME` "
                                                        "lists one's steps)", flat, cols)))  # fmt: skip


def approval_text(rule: dict[str, Any], mutating: bool = False) -> str:
    """A playbook's approval rule in a few words, as a plan of it will apply it (a repair plan of a
    mutating playbook always needs one approver, see breakfix.api.plans).

    >>> approval_text({"kind": "two_person", "role": "approver"})
    'two approvers'
    >>> approval_text({"kind": "canary_list", "role": "approver", "canary_nodes": ["n1"]})
    'none on canary list (1 node), else one approver'
    >>> approval_text({"kind": "none"}, mutating=True)
    'one approver (plans)'
    """
    kind, role = rule.get("kind", "none"), rule.get("role") or "approver"
    if kind == "none" and mutating:
        return "one approver (plans)"
    if kind == "role":
        return f"one {role}"
    if kind == "two_person":
        return f"two {role}s"
    if kind == "canary_list":
        return f"none on canary list ({len(rule.get('canary_nodes') or [])} node), else one {role}"
    return "none"


def _render_runbook(rb: dict[str, Any]) -> None:
    header = {
        "version": rb.get("version"),
        "classes": rb.get("classes"),
        "actions": rb.get("actions"),
        "mutating": rb.get("mutating"),
        "approval": approval_text(rb.get("approval") or {}, bool(rb.get("mutating"))),
        "description": rb.get("description"),
    }
    console.print(fields(f"runbook {rb.get('name', '')}", header))
    for title, key in (("steps", "steps"), ("rollback", "rollback")):
        steps = rb.get(key) or []
        if steps:
            rows = [
                {"#": i, "step": s.get("name"), "does": f"{s.get('actuator')}.{s.get('operation')}",
                 "mutating": "yes" if s.get("mutating") else "no", "timeout": f"{s.get('timeout_s', 0):g}s"}
                for i, s in enumerate(steps, 1)
            ]  # fmt: skip
            console.print(table(title, rows, ("#", "step", "does", "mutating", "timeout")))


@ticket_app.command("list")
def ticket_list(
    node: str | None = typer.Option(None, "--node", help="Only this node's tickets."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most this many (newest first)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List tickets: a node's, or the most recent ones fleet-wide.

    Example: breakfix ticket list --node gpu-a-r01-n03
    """
    rows = call(server, token, lambda c: c.list_tickets(node, limit))
    cols = ("key", "node", "status", "summary", "closed_by", "resolution", "link")
    emit(rows, as_json, lambda r: console.print(table(f"tickets ({len(r)})", r, cols)))


@ticket_app.command("show")
def ticket_show(
    ticket_id: str = typer.Argument(..., help="Ticket id."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show one ticket.

    Example: breakfix ticket show T-12
    """
    emit(
        call(server, token, lambda c: c.get_ticket(ticket_id)),
        as_json,
        lambda t: console.print(fields(f"ticket {ticket_id}", t)),
    )


@ticket_app.command("create")
def ticket_create(
    node: str = typer.Argument(..., help="Node the ticket is about."),
    summary: str = typer.Option(..., "--summary", help="One line: what is wrong."),
    details: str = typer.Option("", "--details", help="Longer description, evidence, links."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Open a ticket for a node.

    Example: breakfix ticket create gpu-a-r01-n03 --summary "Xid 79 twice in an hour"
    """
    answer = call(server, token, lambda c: c.create_ticket(node, summary, details))
    ticket = answer.get("ticket") or {}
    verb = "opened" if answer.get("created", True) else "already open"
    emit(answer, as_json, lambda _: done(f"ticket {ticket.get('key', '')} {verb} for {node}"))


@ticket_app.command("close")
def ticket_close(
    ticket_id: str = typer.Argument(..., help="Ticket id."),
    resolution: str = typer.Option(..., "--resolution", help="How it was resolved."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Close a ticket (humans only: an agent's token is refused).

    Example: breakfix ticket close T-12 --resolution "GPU 3 replaced, dcgmi diag level 3 clean"
    """
    answer = call(server, token, lambda c: c.close_ticket(ticket_id, resolution))
    emit(answer, as_json, lambda _: done(f"ticket {ticket_id} closed"))


def register(app: typer.Typer) -> None:
    app.command("decisions")(decisions)
    app.command("runbooks")(runbooks)
    app.add_typer(ticket_app, name="ticket")
