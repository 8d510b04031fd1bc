"""``breakfix explain``: paste a kernel line, an SXid or fabric-manager line, or a dcgm-exporter scrape,
and see how the product reads it, NVIDIA's catalog entry and resolution, and what the product would do
with one occurrence of it under the policy."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from breakfix.cli.common import console, fail, print_json
from breakfix.explain import Explanation, explain_text
from policy.model import PolicyError, load_policy


def _show(e: Explanation) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("input", e.text)
    table.add_row("read as", e.read_as)
    if e.nvidia:
        facts = ", ".join(f"{k}: {v}" for k, v in e.nvidia.items() if v not in ("", None))
        table.add_row("NVIDIA", facts)
    if e.reading:
        table.add_row(
            "product", ", ".join(f"{k}: {v}" for k, v in e.reading.items() if v not in (False, None, ""))
        )
    table.add_row("would", e.outcome)
    if e.source:
        table.add_row("source", e.source)
    console.print(table)
    console.print()


def explain(
    lines: list[str] = typer.Argument(None, help="Kernel, SXid or fabric-manager lines (quote each)."),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Read a log excerpt or a scrape from a file."
    ),
    policy_path: Path | None = typer.Option(None, "--policy", help="Policy file (default: the shipped one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the explanations as JSON."),
) -> None:
    """Explain how a kernel line, SXid line or dcgm-exporter scrape is read and what would be done.

    With no LINES and no --file, reads stdin (so `dmesg | breakfix explain` works).

    Example: breakfix explain "NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus."
    """
    if file is not None:
        if not file.is_file():
            fail(
                f"no such file: {file}", "pass a kernel log excerpt or a dcgm-exporter scrape saved to a file"
            )
        text = file.read_text(errors="replace")
    elif lines:
        text = "\n".join(lines)
    else:
        text = sys.stdin.read()
    if not text.strip():
        fail("nothing to explain", 'paste a line: breakfix explain "NVRM: Xid (PCI:0000:3b:00): 48, ..."')
    try:
        policy = load_policy(policy_path)
    except (PolicyError, OSError) as err:
        fail(str(err), "check the policy file with: breakfix policy check FILE")
    out = explain_text(text, policy, policy.catalog_for("", ""))
    if as_json:
        print_json([e.as_dict() for e in out])
        return
    for e in out:
        _show(e)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
