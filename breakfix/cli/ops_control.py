"""``breakfix killswitch``, ``breakfix mode set``, ``breakfix breaker reset``: the operator's levers.

Each lever is a control message the API publishes on the compacted control topic; every worker and
actuator reads it. A reason is mandatory because the audit log is where the next on-call reads it.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import typer

from breakfix.cli.common import console, fail
from breakfix.cli.ops_common import JSON_OPT, SERVER_OPT, TOKEN_OPT, call, cell, done, emit, fields, table
from breakfix.opsclient.client import Mode

mode_app = typer.Typer(
    help="Per failure class automation mode: shadow, recommend or auto.", no_args_is_help=True
)
breaker_app = typer.Typer(
    help="The fleet-wide circuit breaker (only a person resets it).", no_args_is_help=True
)

MODES = ("shadow", "recommend", "auto")
REASON_OPT = typer.Option(..., "--reason", help="Why (recorded in the audit log and on the control topic).")


def killswitch(
    state: str = typer.Argument(..., help="on, off, or status (alias show)."),
    pool: str | None = typer.Option(None, "--pool", help="Only this pool (default: the whole fleet)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (required for on and off)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Stop (on) or resume (off) all automated actions, fleet-wide or for one pool; status shows both.

    Example: breakfix killswitch on --pool train-a --reason "driver rollout in progress"
    """
    if state in ("status", "show"):
        emit(call(server, token, lambda c: c.get_killswitch()), as_json, _render_killswitch)
        return
    if state not in ("on", "off"):
        fail(f"unknown state {state!r}", "use on, off or status")
    if not reason:
        fail("--reason is required to change the kill switch", 'add --reason "why"')
    answer = call(server, token, lambda c: c.set_killswitch(state == "on", reason, pool))
    emit(
        answer, as_json, lambda _: done(f"kill switch {state} for {f'pool {pool}' if pool else 'the fleet'}")
    )


@mode_app.command("set")
def mode_set(
    failure_class: str = typer.Argument(..., help="Failure class (e.g. gpu_memory)."),
    mode: str = typer.Argument(..., help="shadow, recommend or auto."),
    reason: str = REASON_OPT,
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Move a failure class between shadow (record only), recommend (ask a person) and auto (act).

    Example: breakfix mode set gpu_memory recommend --reason "2 weeks of clean validations"
    """
    if mode not in MODES:
        fail(f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    answer = call(server, token, lambda c: c.set_mode(failure_class, cast(Mode, mode), reason))
    emit(answer, as_json, lambda _: done(f"{failure_class} is now {mode}"))


@mode_app.command("show")
def mode_show(
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show the mode of every failure class an operator set, with who set it, when and why.

    Example: breakfix mode show
    """
    rows = call(server, token, lambda c: c.levers("mode"))
    emit(rows, as_json, lambda r: _render_levers("modes set (others follow the policy file)", r))


def levers(
    kind: str | None = typer.Option(
        None, "--kind", help="killswitch, mode, exclusion, emergency, approval or breaker_reset."
    ),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show every lever that was set (kill switches, modes, exclusions, emergency, approvals, breaker
    resets): its latest value, who set it, when and why.

    Example: breakfix levers --kind killswitch
    """
    rows = call(server, token, lambda c: c.levers(kind))
    emit(rows, as_json, lambda r: _render_levers("levers", r))


def _render_levers(title: str, rows: list[dict[str, Any]]) -> None:
    flat = [{**r, "value": cell(r.get("value"))} for r in rows]
    columns = ("scope", "kind", "value", "actor", "time", "reason")
    console.print(table(f"{title} ({len(rows)})", flat, columns))


@breaker_app.command("reset")
def breaker_reset(
    discard_backlog: bool = typer.Option(
        False,
        "--discard-backlog",
        help="Drop the decisions held while tripped (they were likely one incident).",
    ),
    resume: bool = typer.Option(False, "--resume", help="Act on the held decisions after the reset."),
    reason: str = REASON_OPT,
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Reset a tripped circuit breaker, saying what to do with the decisions it held back.

    Example: breakfix breaker reset --discard-backlog --reason "PDU failure in row 3, fixed"
    """
    if discard_backlog == resume:
        fail("choose exactly one of --discard-backlog and --resume", "see `breakfix breaker reset --help`")
    resolution: Literal["discard_backlog", "resume"] = "discard_backlog" if discard_backlog else "resume"
    answer = call(server, token, lambda c: c.reset_breaker(resolution, reason))
    emit(answer, as_json, lambda _: done(f"breaker reset ({resolution})"))


def _render_killswitch(state: dict[str, Any]) -> None:
    pools = state.get("pools") or {}
    console.print(fields("kill switch", {"global": "ON" if state.get("global") else "off"}))
    for pool, on in sorted(pools.items()):
        console.print(f"  pool {pool}: {'ON' if on else 'off'}")


def register(app: typer.Typer) -> None:
    app.command("killswitch")(killswitch)
    app.command("levers")(levers)
    app.add_typer(mode_app, name="mode")
    app.add_typer(breaker_app, name="breaker")
