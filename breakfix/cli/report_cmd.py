"""``breakfix report``: the audit store as one self-contained HTML page (plotly.js inlined)."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import console, fail, store_errors
from breakfix.cli.db_cmd import STORE_HELP, parse_since
from breakfix.report import build_report
from policy.model import PolicyError, load_policy
from store.dsn import open_store


def report(
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write."),
    since: str | None = typer.Option(
        None, help="Only decisions from here: RFC 3339 time or a duration (7d)."
    ),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    policy: Path | None = typer.Option(None, "--policy", help="Policy file whose headroom table to draw."),
) -> None:
    """Write the fleet report: nodes by state, capacity vs headroom, MTTR, precision, repeat
    offenders and one incident's timeline. Opens offline in any browser.

    Example: breakfix report --store chdb:///var/lib/breakfix/chdb --since 7d --out report.html
    """
    try:
        pol = load_policy(policy)
    except (PolicyError, OSError) as err:
        fail(f"cannot load the policy: {err}", "check --policy with 'breakfix policy check'")
    try:
        s = open_store(store)
    except Exception as err:  # a bad DSN, a lock held by another process, an unreachable server
        fail(f"cannot open the store: {err}", "pass --store chdb:///path or http://host:8123")
    with store_errors(s):
        path = build_report(s, out, parse_since(since), policy=pol)
    console.print(f"report written to {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
