"""``breakfix simulate``: write a synthetic fleet recording with injected faults and ground truth."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from breakfix.cli.common import console, fail, print_json
from sim.simulator.alloc import AllocationError
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, SimResult, simulate, ticks_of
from sim.simulator.scenario import ScenarioError, load_scenario, resolve, shipped
from sim.simulator.sizing import minimum_nodes


def _run(cfg: SimConfig, out: Path, labels: Path | None) -> SimResult:
    if not console.is_terminal:
        return simulate(cfg, out, labels)
    columns = (
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("simulate", total=ticks_of(cfg))
        return simulate(cfg, out, labels, lambda n: bar.advance(task, n))


def simulate_cmd(
    out: Path = typer.Option(..., "--out", help="Recording to write (.jsonl, or .jsonl.gz for gzip)."),
    nodes: int = typer.Option(200, "--nodes", min=1, max=100_000, help="Fleet size."),
    hours: float = typer.Option(6.0, "--hours", min=0.01, max=24 * 31, help="Recording length."),
    seed: int = typer.Option(0, "--seed", help="Same seed and arguments, same bytes."),
    scenario: list[str] = typer.Option(
        [],
        "--scenario",
        help="Scenario YAML file or shipped name; repeat it, or 'all' for every shipped one.",
    ),
    labels: Path | None = typer.Option(None, "--labels", help="Write ground-truth labels (JSONL) here."),
    start: str = typer.Option(DEFAULT_START, "--start", help="Recording start, RFC 3339 with offset."),
    background: bool = typer.Option(
        True,
        "--background/--no-background",
        help="A real fleet's everyday noise on healthy nodes (corrected ECC errors, PCIe replays, user "
        "Xids, job crashes, NCCL timeouts, thermal blips, restarts), at published fleet-study rates.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Simulate a GPU fleet and inject faults from scenario files.

    Example: breakfix simulate --nodes 1000 --hours 24 --scenario all --out rec.jsonl.gz --labels truth.jsonl
    """
    names = [n for s in scenario for n in s.split(",") if n]
    try:
        t0 = parse_start(start)
        scenarios = [load_scenario(p) for p in resolve(names)]
    except ScenarioError as err:
        fail(str(err), f"shipped scenarios: {', '.join(p.stem for p in shipped())}")
    except ValueError as err:
        fail(f"--start: {err}", "e.g. --start 2026-01-05T00:00:00Z")
    cfg = SimConfig(nodes=nodes, hours=hours, seed=seed, start=t0, scenarios=scenarios)
    if not background:
        cfg.noise = None
    began = time.perf_counter()
    try:
        result = _run(cfg, out, labels)
    except (AllocationError, ScenarioError) as err:
        out.unlink(missing_ok=True)
        least = minimum_nodes(scenarios, nodes, seed, t0, hours)
        need = (
            f"these scenarios need at least {least} nodes: use --nodes {least} or more, or drop a scenario"
            if least
            else "drop a scenario: no fleet of up to 5000 nodes fits them all"
        )
        fail(f"{nodes} nodes are too few: {err}", need)
    elapsed = time.perf_counter() - began
    summary = {
        "out": str(out),
        "labels": str(labels) if labels else None,
        "nodes": nodes,
        "hours": hours,
        "seed": seed,
        "scenarios": [s.name for s in scenarios],
        "background": background,
        "events": result.events,
        "bytes": result.bytes,
        "seconds": round(elapsed, 2),
        "events_per_s": round(result.events / elapsed) if elapsed > 0 else None,
        "label_count": len(result.labels),
        "by_type": dict(sorted(result.by_type.items())),
    }
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"{result.events:,} events, {result.bytes / 1e6:.1f} MB in {elapsed:.1f}s → {out}")
    table.add_column("event type")
    table.add_column("count", justify="right")
    for name, n in sorted(result.by_type.items()):
        table.add_row(name, f"{n:,}")
    console.print(table)
    if labels:
        console.print(f"{len(result.labels)} ground-truth labels → {labels}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
