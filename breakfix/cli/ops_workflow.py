"""``breakfix workflow show|watch``: where a plan's execution stands (current step, events, errors)."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from breakfix.cli.common import console, err_console, print_json
from breakfix.cli.ops_common import JSON_OPT, SERVER_OPT, TOKEN_OPT, api, call, emit, emit_page, fields, table

workflow_app = typer.Typer(
    help="Workflows started by `breakfix plan execute`: list, show, watch.", no_args_is_help=True
)

# Statuses after which nothing more happens without a person ("paused" waits for one).
TERMINAL = frozenset(
    {"succeeded", "completed", "failed", "escalated", "rejected", "rolled_back", "cancelled", "paused"}
)
SUCCESS = frozenset({"succeeded", "completed"})


WORKFLOW_LIST_COLUMNS = ("id", "plan_id", "status", "nodes", "started_at", "finished_at")


@workflow_app.command("list")
def list_workflows(
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many workflows, newest first."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List workflows, newest first: the plan each runs, status, start and end.

    Example: breakfix workflow list --limit 20
    """
    page = call(server, token, lambda c: c.list_workflows(limit))
    emit_page(page, as_json, "workflows", WORKFLOW_LIST_COLUMNS)


@workflow_app.command("show")
def show(
    workflow_id: str = typer.Argument(..., help="Workflow id (printed by `breakfix plan execute`)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show a workflow: status, current step, steps, events, metrics and errors.

    Example: breakfix workflow show wf-9c1e
    """
    emit(call(server, token, lambda c: c.get_workflow(workflow_id)), as_json, render_workflow)


@workflow_app.command("watch")
def watch(
    workflow_id: str = typer.Argument(..., help="Workflow id."),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="Seconds between polls."),
    timeout: float = typer.Option(3600.0, "--timeout", min=0.1, help="Give up after this many seconds."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Poll a workflow until it ends; exit 0 when it succeeded, 3 when it ended otherwise, 4 on timeout.

    Example: breakfix workflow watch wf-9c1e --interval 2
    """
    deadline = time.monotonic() + timeout
    with api(server, token) as client:
        wf = client.get_workflow(workflow_id)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TimeElapsedColumn(),
            console=err_console,
            disable=as_json,
        ) as progress:
            task = progress.add_task(_label(wf), total=max(len(wf.get("steps") or []), 1))
            while _status(wf) not in TERMINAL and time.monotonic() < deadline:
                progress.update(
                    task,
                    description=_label(wf),
                    completed=_steps_done(wf),
                    total=max(len(wf.get("steps") or []), 1),
                )
                time.sleep(interval)
                wf = client.get_workflow(workflow_id)
            progress.update(task, description=_label(wf), completed=_steps_done(wf))
    if as_json:
        print_json(wf)
    else:
        render_workflow(wf)
    if _status(wf) not in TERMINAL:
        err_console.print(f"[yellow]still {_status(wf)} after {timeout:.0f}s[/]")
        raise typer.Exit(4)
    if _status(wf) not in SUCCESS:
        raise typer.Exit(3)


def render_workflow(wf: dict[str, Any]) -> None:
    skip = ("steps", "events", "errors", "metrics", "nodes")
    console.print(fields(f"workflow {wf.get('id', '')}", wf, skip=skip))
    steps = wf.get("steps") or []
    if steps:
        console.print(table("steps", steps, ("node", "step", "phase", "status", "attempts", "detail")))
    events = [_event_row(e) for e in wf.get("events") or [] if isinstance(e, dict)]
    if events:
        console.print(table("events (last 20)", events[-20:], ("time", "node", "step", "status", "detail")))
    if wf.get("metrics"):
        console.print(fields("metrics", wf["metrics"]))
    for err in wf.get("errors") or []:
        console.print(f"[bold red]error:[/] {err}")


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    """An action.result event flattened: its data fields beside time and node."""
    data = event.get("data")
    return {**event, **data} if isinstance(data, dict) else event


def _status(wf: dict[str, Any]) -> str:
    return str(wf.get("status", "")).lower()


def _label(wf: dict[str, Any]) -> str:
    return f"{wf.get('id', '')} {_status(wf)} {wf.get('current_step') or ''}".strip()


def _steps_done(wf: dict[str, Any]) -> int:
    """Steps whose status is final; a step without a status counts as not done."""
    done = ("succeeded", "completed", "skipped", "failed", "rolled_back", "ok", "done")
    return sum(
        1 for s in wf.get("steps") or [] if isinstance(s, dict) and str(s.get("status")).lower() in done
    )


def register(app: typer.Typer) -> None:
    app.add_typer(workflow_app, name="workflow")
