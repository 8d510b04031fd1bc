"""``breakfix demo``: the README's first command - the whole pipeline on a simulated fleet."""

from __future__ import annotations

import signal
from pathlib import Path

import typer
from rich.table import Table

from breakfix.cli.common import console, err_console, fail, print_json


def demo(
    nodes: int = typer.Option(200, "--nodes", min=20, max=2000, help="Simulated fleet size."),
    hours: float = typer.Option(2.0, "--hours", min=0.25, max=24, help="Fleet time to simulate."),
    seed: int = typer.Option(7, "--seed", help="Same seed, same fleet and faults."),
    feed_s: float = typer.Option(
        75.0, "--feed-seconds", min=10, max=3600, help="Wall seconds the fleet's telemetry is played over."
    ),
    workdir: Path = typer.Option(Path(".demo"), "--workdir", help="Recording, chdb store, logs, report."),
    report: Path | None = typer.Option(
        None, "--report", help="HTML report path (default WORKDIR/report.html)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Simulate a GPU fleet with injected faults and run the whole pipeline on it: embedded Kafka
    (Tansu), node stage + guard, actuator stage on simulated actuators, ClickHouse sink (chdb).
    Prints a summary computed with SQL and writes an HTML report. Nothing keeps running afterwards.

    Example: breakfix demo --nodes 200 --hours 2
    """
    from breakfix.demo.run import DemoConfig, run_demo

    # A shell without job control starts background commands with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt: `kill -INT` (what Ctrl-C sends) would be lost and the demo would
    # play its whole feed. Ask for the default so an interrupt always stops every child.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfg = DemoConfig(nodes=nodes, hours=hours, seed=seed, feed_s=feed_s, workdir=workdir, report=report)
    try:
        summary = run_demo(cfg, err_console if as_json else console)
    except (RuntimeError, TimeoutError) as err:
        fail(str(err), f"the processes' logs are in {workdir / 'logs'}")
    if as_json:
        print_json(summary.to_dict())
        return
    f, q, m, c = summary.faults, summary.quarantines, summary.mttr, summary.capacity
    table = Table(title=f"breakfix demo: {nodes} nodes, {hours:g} h of fleet time", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("faults injected", f"{f.get('injected', 0)} from {f.get('scenarios', 0)} fault scenarios, "
                  f"{f.get('detected', 0)} detected")  # fmt: skip
    by = ", ".join(f"{r['state']}/{r['mode']} {r['decisions']}" for r in summary.decisions)
    table.add_row("decisions (state/mode)", by or "none")
    table.add_row("quarantines", f"{q.get('quarantines', 0)} ({q.get('executed', 0)} executed), "
                  f"false positives vs labels: {q.get('false_positives', 0)}")  # fmt: skip
    table.add_row("workflows", ", ".join(f"{k} {v}" for k, v in summary.workflows.items()) or "none")
    mttr = (
        f"median {m.get('median_min')} min, p90 {m.get('p90_min')} min over {m.get('repaired')} repairs"
        if m.get("repaired") and m.get("median_min") is not None
        else "no repair completed within the demo's fleet time"
    )
    table.add_row("MTTR (quarantine -> healthy)", mttr)
    table.add_row("capacity removed", f"{c.get('nodes', 0)} nodes, {c.get('node_hours', 0)} node-hours")
    table.add_row("dead letters", ", ".join(f"{k} {v}" for k, v in summary.dead_letters.items()) or "none")
    table.add_row("wall time", ", ".join(f"{k} {v}s" for k, v in summary.timings_s.items()))
    table.add_row("report", summary.report or summary.note)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
