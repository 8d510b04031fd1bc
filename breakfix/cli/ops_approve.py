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
    target: list[str] = typer.Argument(..., help="PLAN_ID, `plan PLAN_ID`, or `decision DECISION_ID`."),
    comment: str | None = typer.Option(None, "--comment", help="Why you approve the plan (audited)."),
    node: str | None = typer.Option(None, "--node", help="decision: the node (checked against it)."),
    failure_class: str | None = typer.Option(
        None, "--class", "--failure-class", help="decision: its class (checked against it)."
    ),
    action: str | None = typer.Option(None, "--action", help="decision: its action (checked against it)."),
    reason: str | None = typer.Option(None, "--reason", help="decision: why (audited)."),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Approve a plan as a human approver (prints the single-use approval token on stdout), or one
    decision the guard held for a person (bound to that decision's id, class and action; it expires
    after the API's approval TTL, 30 minutes by default).

    Example: breakfix plan execute plan-4f2a --token "$(breakfix approve plan-4f2a --comment 'rack empty')"
    Example: breakfix approve decision dec-7c2e --reason "checked the node, reboot is fine"
    """
    if target[:1] == ["decision"]:
        if len(target) != 2 or not reason:
            fail(
                "a decision approval needs the decision id and --reason",
                'use: breakfix approve decision DECISION_ID --reason "why" (ids: `breakfix decisions`)',
            )
        decision_id = target[1]
        answer = call(
            server, token, lambda c: c.approve_decision(decision_id, reason, node, failure_class, action)
        )
        if as_json:
            print_json(answer)
        else:
            v = answer.get("value", {})
            done(f"approved {v.get('action')} on {v.get('node')} ({v.get('failure_class')}) for decision "
                 f"{decision_id}, until {v.get('expires_at')}")  # fmt: skip
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
