"""``breakfix plan create|show|execute``: the repair-plan lifecycle (``breakfix approve`` signs plans).

A plan is computed by the API (affected nodes, playbook and version per node, risk, capacity per pool
against headroom); it runs only as planned, with an approval token bound to its content hash.
"""

from __future__ import annotations

from typing import Any

import typer

from breakfix.cli.common import console, err_console, print_json
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
from breakfix.opsclient.config import TOKEN_ENV

plan_app = typer.Typer(
    help="Repair plans: create (dry run or executable), show, execute.", no_args_is_help=True
)

PLAN_NODE_COLUMNS = ("node", "state", "rack", "gpu", "action", "playbook", "playbook_version", "risk")
PLAN_FIELDS = ("status", "pool", "failure_class", "action", "created_by", "created_at", "expires_at",
               "workflow_id")  # fmt: skip
PLAN_LIST_COLUMNS = ("id", "status", "pool", "failure_class", "nodes", "approvals")
CAPACITY_COLUMNS = ("pool", "total_gpus", "healthy_gpus", "removed_gpus", "min_healthy_gpus", "headroom_ok")


def _labels(pairs: list[str]) -> dict[str, str]:
    """``--label KEY=VALUE`` options as the selector's label map (the server checks the bounds)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--label")
        out[key] = value
    return out


@plan_app.command("create")
def create(
    pool: str = typer.Option(..., "--pool", help="Pool the plan works in."),
    failure_class: str = typer.Option(
        ..., "--failure-class", "--class", help="Failure class to repair (e.g. gpu_memory)."
    ),
    node: list[str] = typer.Option([], "--node", help="A node to include; repeat for several."),
    rack: str | None = typer.Option(None, "--rack", help="Select the pool's nodes in this rack."),
    sku: str | None = typer.Option(None, "--sku", help="Select the pool's nodes of this SKU."),
    state: str | None = typer.Option(None, "--state", help="Select the pool's nodes in this state."),
    label: list[str] = typer.Option(
        [],
        "--label",
        help="KEY=VALUE: select nodes whose inventory carries this label; repeat to require several.",
    ),
    action: str | None = typer.Option(None, "--action", help="Force this action (default: the policy's)."),
    execute_ready: bool = typer.Option(
        False,
        "--execute-ready/--dry-run",
        "--no-dry-run",
        help="--execute-ready (alias --no-dry-run): an executable plan; --dry-run (default): impact only.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the plan id (for scripts)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Plan a repair: which nodes, which playbook, what risk, how much capacity it removes.

    Without --node, only nodes whose current state comes from the failure class are planned (never a
    Healthy one); --rack/--sku/--state/--label narrow that. A Healthy node is planned only when named.

    Example: breakfix plan create --pool train-a --failure-class gpu_memory --node a-n03 --execute-ready
    """
    selector: dict[str, Any] = {k: v for k, v in (("rack", rack), ("sku", sku), ("state", state)) if v}
    if label:
        selector["labels"] = _labels(label)
    plan = call(
        server,
        token,
        lambda c: c.create_plan(
            pool,
            failure_class,
            nodes=node or None,
            selector=selector or None,
            action=action,
            dry_run=not execute_ready,
        ),
    )
    if quiet:
        typer.echo(plan.get("id", ""))
        return
    emit(plan, as_json, render_plan)


@plan_app.command("list")
def list_plans(
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many plans, newest first."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List repair plans, newest first: status, target, approvals received of those needed.

    Example: breakfix plan list --limit 20
    """
    page = call(server, token, lambda c: c.list_plans(limit))
    emit_page(page, as_json, "plans", PLAN_LIST_COLUMNS)


@plan_app.command("show")
def show(
    plan_id: str = typer.Argument(..., help="Plan id."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show a plan: status, approval it needs, nodes and capacity impact.

    Example: breakfix plan show plan-4f2a
    """
    emit(call(server, token, lambda c: c.get_plan(plan_id)), as_json, render_plan)


@plan_app.command("execute")
def execute(
    plan_id: str = typer.Argument(..., help="Plan id."),
    approval_token: str | None = typer.Option(
        None, "--token", "--approval-token", help="Approval token from `breakfix approve PLAN_ID`."
    ),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Nodes repaired at the same time."),
    server: str | None = SERVER_OPT,
    api_token: str | None = typer.Option(
        None, "--api-token", help=f"Bearer token (default ${TOKEN_ENV}); --token is the approval token here."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Execute an approved plan; prints the workflow id to follow with `breakfix workflow watch`.
    Each node's run rolls back on failure as its playbook says (the actuator stage runs the playbook
    the guard's decision names, rollback included: there is no option to skip it).

    Example: breakfix plan execute plan-4f2a --token "$(breakfix approve plan-4f2a)" --concurrency 1
    """
    answer = call(
        server, api_token, lambda c: c.execute_plan(plan_id, approval_token, concurrency=concurrency)
    )
    if as_json:
        print_json(answer)
        return
    typer.echo(answer.get("workflow_id", ""))
    err_console.print(f"follow it: breakfix workflow watch {answer.get('workflow_id', '')}")


def render_plan(plan: dict[str, Any]) -> None:
    """Header, then the nodes the plan touches, then capacity per pool against its headroom."""
    header = {k: v for k, v in plan.items() if k in PLAN_FIELDS}
    rule = plan.get("approval") or {}
    header["approval"] = rule.get("summary") or rule.get("kind", "")
    if plan.get("approvals"):
        header["approved by"] = ", ".join(a.get("actor", "") for a in plan["approvals"])
    console.print(fields(f"plan {plan.get('id', '')}", header))
    for note in plan.get("notes") or []:
        console.print(f"[yellow]note:[/] {note}")
    console.print(table("nodes", plan.get("nodes") or [], PLAN_NODE_COLUMNS))
    capacity = plan.get("capacity") or []
    console.print(table("capacity", capacity, CAPACITY_COLUMNS))
    if any(row.get("headroom_ok") is False for row in capacity):
        console.print(
            "[bold red]headroom: this plan would drain a pool below its minimum healthy capacity[/]"
        )
    else:
        done("capacity stays within every pool's headroom")


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
