"""Entry point of the ``breakfix`` console script."""

from __future__ import annotations

import logging
import sys

import typer

from breakfix.cli import (
    collect_cmd,
    db_cmd,
    demo_cmd,
    explain_cmd,
    keys_cmd,
    mcp_cmd,
    nico_cmd,
    nodeagent_cmd,
    ops_approve,
    ops_audit,
    ops_call,
    ops_control,
    ops_machine,
    ops_nodes,
    ops_plan,
    ops_tickets,
    ops_workflow,
    policy_cmd,
    produce_cmd,
    replay_cmd,
    report_cmd,
    run_cmd,
    schema_cmd,
    score_cmd,
    serve_cmd,
    simulate_cmd,
    sink_cmd,
    stack_cmd,
    topics_cmd,
    validate_cmd,
)
from breakfix.cli.common import err_console
from breakfix.cli.errors import explain
from breakfix.stack.context import apply_context

app = typer.Typer(
    name="breakfix",
    help="Break-fix automation for GPU fleets: detect, quarantine, repair, validate, return to service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (
    stack_cmd,
    validate_cmd,
    schema_cmd,
    demo_cmd,
    collect_cmd,
    db_cmd,
    policy_cmd,
    replay_cmd,
    report_cmd,
    simulate_cmd,
    score_cmd,
    nodeagent_cmd,
    run_cmd,
    sink_cmd,
    topics_cmd,
    produce_cmd,
    ops_audit,
    ops_control,
    ops_machine,
    ops_nodes,
    ops_plan,
    ops_tickets,
    ops_workflow,
    ops_approve,
    ops_call,
    mcp_cmd,
    serve_cmd,
    explain_cmd,
    nico_cmd,
    keys_cmd,
):
    module.register(app)


@app.callback()
def _global(
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an unexpected error (anywhere on the line)."
    ),
) -> None:
    """Break-fix automation for GPU fleets: detect, quarantine, repair, validate, return to service.

    Commands read the context file `breakfix up` writes (broker, API URL, token) for what their
    options and BREAKFIX_* environment variables leave unset.
    """


def main() -> None:
    """Run a command; an unexpected error is one or two lines (what happened, what to do next), and
    its traceback only with ``--debug``."""
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    if not debug:
        # Client libraries log a connection failure before raising it; the raised error is reported
        # below as one line, so their own lines (and asyncio's about unclosed clients) stay quiet.
        for name in ("aiokafka", "kafka", "asyncio", "httpx"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    apply_context(role="agent" if sys.argv[1:2] == ["mcp"] else "operator")
    try:
        app()
    except Exception as err:
        if debug:
            raise
        message, hint = explain(err)
        err_console.print(f"[bold red]error:[/] {message}")
        err_console.print(f"[yellow]hint:[/] {hint}")
        sys.exit(1)
