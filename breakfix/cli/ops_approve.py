"""``breakfix approve``: a human approver signs a repair plan (or one held decision).

``breakfix approve PLAN_ID`` (also ``approve plan PLAN_ID``, the form the audit log records) prints the
single-use approval token, bound to the plan's content hash, on stdout so it can feed
``plan execute --token``. ``breakfix approve decision --node N --class C --action A --reason R``
approves a decision the guard held for a person.
"""

from __future__ import annotations

import typer

from breakfix.cli.common import err_console, fail, print_json
from breakfix.cli.ops_common import JSON_OPT, SERVER_OPT, TOKEN_OPT, call, done


def approve(
    target: list[str] = typer.Argument(..., help="PLAN_ID, `plan PLAN_ID`, or `decision` (with --node ...)."),
    comment: str | None = typer.Option(None, "--comment", help="Why you approve the plan (audited)."),
    node: str | None = typer.Option(None, "--node", help="decision: the node."),
    failure_class: str | None = typer.Option(None, "--class", "--failure-class", help="decision: its class."),
    action: str | None = typer.Option(None, "--action", help="decision: the action approved."),
    reason: str | None = typer.Option(None, "--reason", help="decision: why (audited)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Approve a plan as a human approver; prints the single-use approval token on stdout.

    Example: breakfix plan execute plan-4f2a --token "$(breakfix approve plan-4f2a --comment 'rack empty')"
    """
    if target == ["decision"]:
        if not (node and failure_class and action and reason):
            fail("a decision approval needs --node, --class, --action and --reason")
        answer = call(server, token, lambda c: c.approve_decision(node, failure_class, action, reason))
        if as_json:
            print_json(answer)
        else:
            done(f"approved {action} on {node} ({failure_class})")
        return
    if len(target) == 2 and target[0] == "plan":
        target = target[1:]
    if len(target) != 1:
        fail(f"cannot tell what to approve from {' '.join(target)!r}", "use: breakfix approve PLAN_ID")
    plan_id = target[0]
    answer = call(server, token, lambda c: c.approve_plan(plan_id, comment))
    if as_json:
        print_json(answer)
        return
    typer.echo(answer.get("approval_token", ""))
    err_console.print(
        f"approved plan {answer.get('plan_id', plan_id)} (content {answer.get('content_hash', '')}), "
        f"token expires {answer.get('expires_at', '')}"
    )


def register(app: typer.Typer) -> None:
    app.command("approve")(approve)
