"""NICo-style ``breakfix machine show|release`` and ``breakfix health-override add|remove|show``.

The machine and health-override routes mirror the bare-metal cloud API a repair tenant already knows,
so the same words work from a terminal: a machine is a node, a health override takes it out of (or
asks for) repair with a template name.
"""

from __future__ import annotations

from typing import Any, cast

import typer

from breakfix.cli.common import console, fail
from breakfix.cli.ops_common import JSON_OPT, SERVER_OPT, TOKEN_OPT, call, done, emit, fields, table
from breakfix.opsclient.client import Template

machine_app = typer.Typer(help="Machines (NICo-style): show, release after repair.", no_args_is_help=True)
override_app = typer.Typer(help="Health overrides on a machine (NICo-style).", no_args_is_help=True)

TEMPLATES = ("RequestRepair", "OutForRepair")
CATEGORIES = ("HARDWARE", "NETWORK", "PERFORMANCE", "OTHER")
REPAIR_STATUSES = ("Completed", "Failed", "InProgress")
# The API names an override after the template that set it (NICo's naming).
OVERRIDE_NAMES = {"RequestRepair": "repair-request", "OutForRepair": "out-for-repair"}


@machine_app.command("show")
def machine_show(
    machine_id: str = typer.Argument(..., help="Machine (node) id."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show a machine record with its health overrides.

    Example: breakfix machine show gpu-a-r01-n03
    """
    emit(call(server, token, lambda c: c.get_machine(machine_id)), as_json, _render_machine)


@machine_app.command("release")
def machine_release(
    instance_id: str = typer.Argument(..., help="Instance (machine) id to release."),
    category: str | None = typer.Option(None, "--category", help="Issue category: " + ", ".join(CATEGORIES)),
    summary: str | None = typer.Option(None, "--summary", help="One line: what is wrong (with --category)."),
    details: str | None = typer.Option(None, "--details", help="Longer description of the issue."),
    repair_status: str | None = typer.Option(
        None, "--repair-status", help="Repair outcome: " + ", ".join(REPAIR_STATUSES)
    ),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Release an instance, optionally reporting an issue with it (a tenant report).

    Example: breakfix machine release gpu-a-r01-n03 --category HARDWARE --summary "ECC errors on GPU 3"
    """
    issue: dict[str, Any] | None = None
    if category or summary or details:
        if category not in CATEGORIES or not summary:
            fail("an issue report needs --category and --summary", f"categories: {', '.join(CATEGORIES)}")
        issue = {"category": category, "summary": summary}
        if details:
            issue["details"] = details
    if repair_status is not None and repair_status not in REPAIR_STATUSES:
        fail(f"unknown repair status {repair_status!r}", f"use one of {', '.join(REPAIR_STATUSES)}")
    answer = call(server, token, lambda c: c.release_instance(instance_id, issue, repair_status))
    emit(
        answer,
        as_json,
        lambda _: done(f"released {instance_id}" + (" with an issue report" if issue else "")),
    )


@override_app.command("show")
def override_show(
    machine_id: str = typer.Argument(..., help="Machine (node) id."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List the health overrides on a machine.

    Example: breakfix health-override show gpu-a-r01-n03
    """
    overrides = call(server, token, lambda c: c.list_health_overrides(machine_id))
    emit(overrides, as_json, lambda o: _render_overrides(machine_id, o))


@override_app.command("add")
def override_add(
    machine_id: str = typer.Argument(..., help="Machine (node) id."),
    template: str = typer.Option("RequestRepair", "--template", help="RequestRepair or OutForRepair."),
    message: str = typer.Option(..., "--message", help="Why (shown to whoever looks at the machine)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Put a health override on a machine.

    Example: breakfix health-override add gpu-a-r01-n03 --template OutForRepair --message "RMA 4411"
    """
    tpl = _template(template)
    answer = call(server, token, lambda c: c.add_health_override(machine_id, tpl, message))
    emit(answer, as_json, lambda _: done(f"{tpl} override on {machine_id}"))


@override_app.command("remove")
def override_remove(
    machine_id: str = typer.Argument(..., help="Machine (node) id."),
    name: str | None = typer.Argument(None, help="Override name, e.g. out-for-repair (or use --template)."),
    template: str = typer.Option("RequestRepair", "--template", help="Template whose override to remove."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Remove a health override from a machine.

    Example: breakfix health-override remove gpu-a-r01-n03 --template OutForRepair
    """
    target = name or OVERRIDE_NAMES.get(template, template)
    answer = call(server, token, lambda c: c.remove_health_override(machine_id, target))
    emit(answer, as_json, lambda _: done(f"removed {target} from {machine_id}"))


def _template(value: str) -> Template:
    if value not in TEMPLATES:
        fail(f"unknown template {value!r}", f"use one of {', '.join(TEMPLATES)}")
    return cast(Template, value)


def _render_machine(machine: dict[str, Any]) -> None:
    name = str(machine.get("machine", ""))
    console.print(fields(f"machine {name}", machine, skip=("overrides",)))
    _render_overrides(name, machine)


def _render_overrides(machine_id: str, record: dict[str, Any]) -> None:
    """The API keys overrides by name (``out-for-repair``...): one row per override."""
    overrides = record.get("overrides") or {}
    if not overrides:
        console.print(f"no health overrides on {machine_id}")
        return
    rows = [{"name": name, **(v if isinstance(v, dict) else {"value": v})} for name, v in overrides.items()]
    console.print(table(f"health overrides on {machine_id}", rows, ("name", "source", "message")))


def register(app: typer.Typer) -> None:
    app.add_typer(machine_app, name="machine")
    app.add_typer(override_app, name="health-override")
