"""``breakfix nodes`` and ``breakfix node show``: fleet state as the API sees it (kubectl get/describe)."""

from __future__ import annotations

from typing import Any

import typer

from breakfix.cli.common import console
from breakfix.cli.ops_common import JSON_OPT, SERVER_OPT, TOKEN_OPT, call, emit, fields, table

NODE_COLUMNS = ("node", "pool", "rack", "sku", "gpus", "state", "since", "failure_class", "confidence")
LABEL_COLUMNS = ("node", "pool", "state", "labels")
"""``--show-labels``: placement, timing and judgement give way to the labels, one ``key=value`` per
line, so the table still fits 80 columns however many labels a node reports."""

node_app = typer.Typer(help="One node: state, evidence, decisions.", no_args_is_help=True)


def nodes(
    pool: str | None = typer.Option(None, "--pool", help="Only nodes of this pool."),
    state: str | None = typer.Option(None, "--state", help="Only nodes in this state (e.g. Quarantined)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many nodes."),
    show_labels: bool = typer.Option(
        False, "--show-labels", "-L", help="Show each node's inventory labels (what `plan --label` matches)."
    ),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List nodes with their state, failure class and confidence.

    Example: breakfix nodes --pool train-a --state Quarantined
    Example: breakfix nodes --pool train-a --show-labels
    """
    rows = call(server, token, lambda c: c.list_nodes(pool=pool, state=state, limit=limit))
    if show_labels:
        emit(rows, as_json, lambda r: console.print(table(f"nodes ({len(r)})", _labelled(r), LABEL_COLUMNS)))
    else:
        emit(rows, as_json, lambda r: console.print(table(f"nodes ({len(r)})", r, NODE_COLUMNS)))


def _labelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose labels read one ``key=value`` per line, sorted by key."""
    return [
        {**r, "labels": "\n".join(f"{k}={v}" for k, v in sorted((r.get("labels") or {}).items()))}
        for r in rows
    ]


@node_app.command("show")
def show(
    node: str = typer.Argument(..., help="Node id."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show one node: inventory, state, the evidence behind it and its recent decisions.

    Example: breakfix node show gpu-a-r01-n03
    """
    detail = call(server, token, lambda c: c.get_node(node))
    emit(detail, as_json, _render_node)


def _render_node(detail: dict[str, Any]) -> None:
    console.print(fields(f"node {detail.get('node', '')}", detail, skip=("evidence", "decisions")))
    evidence = detail.get("evidence") or []
    if evidence:
        cols = _columns(evidence, ("time", "domain", "signal", "weight", "source", "gpu", "detail"))
        console.print(table("evidence", evidence, cols))
    decisions = detail.get("decisions") or []
    if decisions:
        cols = ("id", "to_state", "failure_class", "confidence", "action", "mode", "time")
        console.print(table("decisions", decisions, cols))


def _columns(rows: list[dict[str, Any]], preferred: tuple[str, ...]) -> tuple[str, ...]:
    """The preferred columns the rows actually carry, else the keys of the first row."""
    present = tuple(c for c in preferred if any(c in r for r in rows))
    return present or tuple(rows[0])


def register(app: typer.Typer) -> None:
    app.command("nodes")(nodes)
    app.add_typer(node_app, name="node")
