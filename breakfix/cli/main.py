"""Entry point of the ``breakfix`` console script."""

from __future__ import annotations

import typer

from breakfix.cli import (
    collect_cmd,
    db_cmd,
    demo_cmd,
    explain_cmd,
    mcp_cmd,
    nodeagent_cmd,
    ops_approve,
    ops_audit,
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
    topics_cmd,
    validate_cmd,
)

app = typer.Typer(
    name="breakfix",
    help="Break-fix automation for GPU fleets: detect, quarantine, repair, validate, return to service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (
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
    mcp_cmd,
    serve_cmd,
    explain_cmd,
):
    module.register(app)


def main() -> None:
    app()
