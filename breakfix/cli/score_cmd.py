"""``breakfix score``: judge decisions against ground-truth labels, optionally beside the naive baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from breakfix.cli.common import console, err_console, fail, print_json
from sim.score.compare import HEADLINE, compare, flatten
from sim.score.inputs import NodeInfo, read_decisions, read_inventory
from sim.score.metrics import score
from sim.score.naive import run_naive
from sim.simulator.labels import read_labels


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _headline(ours: dict[str, Any], naive: dict[str, Any] | None) -> Table:
    table = Table(title="decision quality")
    table.add_column("figure")
    table.add_column("better", style="dim")
    table.add_column("ours", justify="right")
    rows = compare(ours, naive) if naive is not None else None
    if rows is not None:
        table.add_column("naive", justify="right")
        table.add_column("ours / naive", justify="right")
    flat = flatten(ours)
    for key, name, better in HEADLINE:
        if rows is None:
            table.add_row(name, better, _fmt(flat[key]))
        else:
            r = rows[key]
            table.add_row(name, better, _fmt(r["ours"]), _fmt(r["naive"]), _fmt(r["ratio"]))
    return table


def _details(fig: dict[str, Any], who: str) -> list[Table]:
    classes = Table(title=f"{who}: quarantines by failure class")
    for col in ("class", "quarantines", "true", "precision", "faults", "caught", "recall"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for cls, row in fig["per_class"].items():
        classes.add_row(
            cls, *(_fmt(row[k]) for k in ("quarantines", "true", "precision", "faults", "caught", "recall"))
        )
    scopes = Table(title=f"{who}: storms and changes")
    for col in ("scenario", "scope", "nodes", "incidents / rollbacks", "quarantines", "drains"):
        scopes.add_column(col)
    for s in fig["storms"] + fig["changes"]:
        remedy = s.get("incidents", s.get("rollbacks"))
        scopes.add_row(
            s["scenario"],
            s["scope"],
            _fmt(s["nodes"]),
            _fmt(remedy),
            _fmt(s["quarantines"]),
            _fmt(s["drains"]),
        )
    out = [classes, scopes]
    if fig["capacity"]:
        cap = Table(title=f"{who}: capacity removed vs headroom")
        for col in ("pool", "GPUs", "max removed", "min healthy", "below headroom"):
            cap.add_column(col)
        for pool, row in fig["capacity"].items():
            below = "[red]yes[/]" if row["below_headroom"] else "no"
            cap.add_row(
                pool, _fmt(row["gpus"]), _fmt(row["max_removed"]), _fmt(row["min_healthy_frac"]), below
            )
        out.append(cap)
    return out


def score_cmd(
    labels: Path = typer.Option(
        ..., "--labels", help="Ground-truth labels (from `breakfix simulate --labels`)."
    ),
    decisions: Path = typer.Option(
        ..., "--decisions", help="Decisions JSONL (from `breakfix replay --offline`)."
    ),
    recording: Path | None = typer.Option(None, "--recording", help="The recording: inventory for capacity."),
    baseline: str | None = typer.Option(
        None, "--baseline", help="'naive': score the table-driven baseline too."
    ),
    min_healthy: float = typer.Option(
        0.9, "--min-healthy", min=0.0, max=1.0, help="Headroom: healthy share."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON."),
) -> None:
    """Precision/recall of quarantines, wrongful actions, time to detect, MTTR, capacity, storms.

    Example: breakfix score --labels truth.jsonl --decisions dec.jsonl --recording rec.jsonl --baseline naive
    """
    for opt, path in (("--labels", labels), ("--decisions", decisions), ("--recording", recording)):
        if path is not None and str(path) != "-" and not path.is_file():
            fail(f"{opt}: no such file: {path}")
    if baseline not in (None, "naive"):
        fail(f"--baseline: unknown baseline {baseline!r}", "the only baseline is 'naive'")
    if baseline and recording is None:
        fail("--baseline naive needs the recording", "add --recording REC.jsonl[.gz]")
    try:
        truth = list(read_labels(labels))
    except ValueError as err:
        fail(str(err), "pass the labels file written by `breakfix simulate --labels`")
    ours_in = read_decisions(decisions)
    if ours_in.bad_lines:
        err_console.print(f"[yellow]warning:[/] skipped {ours_in.bad_lines} unreadable decision line(s): "
                          f"{ours_in.first_error}")  # fmt: skip
    inventory: dict[str, NodeInfo] | None = None
    naive_fig: dict[str, Any] | None = None
    if baseline:
        assert recording is not None
        naive = run_naive(recording)
        inventory = naive.inventory
        naive_fig = score(truth, naive.decisions, inventory, min_healthy)
    elif recording is not None:
        inventory = read_inventory(recording)
    ours = score(truth, ours_in.decisions, inventory, min_healthy)
    if as_json:
        doc: dict[str, Any] = {"ours": ours, "bad_decision_lines": ours_in.bad_lines}
        if naive_fig is not None:
            doc["naive"] = naive_fig
            doc["comparison"] = compare(ours, naive_fig)
        print_json(doc)
        return
    console.print(_headline(ours, naive_fig))
    for table in _details(ours, "ours"):
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)
