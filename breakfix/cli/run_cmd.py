"""``breakfix run``: the streaming pipeline (node stage + guard) as N Faust worker processes."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import console, fail


def run(
    broker: str | None = typer.Option(
        None, "--broker", help="Kafka bootstrap servers (default BREAKFIX_BROKER)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default BREAKFIX_WORKERS)."
    ),
    embedded: bool = typer.Option(
        False, "--embedded", help="Start the embedded Tansu broker on a free port."
    ),
    store: str | None = typer.Option(None, "--store", help="'memory' or 'rocksdb' (default BREAKFIX_STORE)."),
    log_dir: Path | None = typer.Option(
        None, "--log-dir", help="Write each worker's log here instead of stdout."
    ),
    role: str = typer.Option(
        "pipeline", "--role", help="'pipeline' (node stage + guard) or 'actuators' (decisions -> workflows)."
    ),
    simulate: bool = typer.Option(
        False, "--simulate", help="actuators: act on a simulated fleet (the only actuators wired here)."
    ),
    labels: Path | None = typer.Option(
        None, "--labels", help="actuators --simulate: ground truth from 'breakfix simulate --labels'."
    ),
    state_dir: Path = typer.Option(
        Path(".breakfix/actuators"), "--state-dir", help="actuators: workflow journal and fleet ledger."
    ),
    speed: float = typer.Option(
        1.0, "--speed", min=0.001, help="actuators --simulate: fleet seconds per second."
    ),
    origin: float | None = typer.Option(
        None, "--origin", help="actuators --simulate: fleet time (epoch s) at --wall-origin (default: now)."
    ),
    wall_origin: float | None = typer.Option(None, "--wall-origin", help="Wall time (epoch s) of --origin."),
    lag: float = typer.Option(0.0, "--lag", min=0, help="actuators --simulate: fleet clock lag (fleet s)."),
    until: float | None = typer.Option(
        None, "--until", help="actuators --simulate: fleet clock end (epoch s)."
    ),
    seed: int = typer.Option(0, "--seed", help="actuators --simulate: seed of simulated step failures."),
) -> None:
    """Run the node stage and the guard (or, with --role actuators, the actuator stage) until interrupted.

    Example: breakfix run --broker kafka-1:9092 --workers 4 --store rocksdb
    Example: breakfix run --role actuators --simulate --labels truth.jsonl --broker 127.0.0.1:9092
    """
    if role == "actuators":
        _run_actuators(broker, simulate, labels, state_dir, speed, origin, wall_origin, lag, until, seed)
        return
    if role != "pipeline":
        fail(f"unknown role {role!r}", "use --role pipeline or --role actuators")
    from streams.embedded_broker import EmbeddedBroker
    from streams.settings import StreamSettings
    from streams.workers import supervise

    if embedded and broker:
        fail("--embedded starts its own broker: drop --broker")
    overrides: dict[str, object] = {}
    if workers is not None:
        overrides["workers"] = workers
    if store is not None:
        if store not in ("memory", "rocksdb"):
            fail(f"unknown store {store!r}", "use --store memory or --store rocksdb")
        overrides["store"] = store
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    if embedded:
        with EmbeddedBroker() as b:
            console.print(f"embedded Tansu broker on {b.url} (memory storage: topics vanish when it stops)")
            raise typer.Exit(supervise(StreamSettings(broker=b.url, **overrides), log_dir))  # type: ignore[arg-type]
    settings = StreamSettings(**({"broker": broker} if broker else {}), **overrides)  # type: ignore[arg-type]
    console.print(f"{settings.workers} worker(s) on {settings.broker}, store {settings.store}")
    raise typer.Exit(supervise(settings, log_dir))


def _run_actuators(
    broker: str | None,
    simulate: bool,
    labels: Path | None,
    state_dir: Path,
    speed: float,
    origin: float | None,
    wall_origin: float | None,
    lag: float,
    until: float | None,
    seed: int,
) -> None:
    import time

    from breakfix.demo.actuation import FleetClock
    from breakfix.demo.stage_main import run_simulated_actuators
    from streams.settings import StreamSettings

    if not simulate:
        fail(
            "only simulated actuators are wired to the actuator stage so far",
            "add --simulate (with --labels for ground truth)",
        )
    now = time.time()
    clock = FleetClock(origin if origin is not None else now, wall_origin or now, speed, lag, until)
    settings = StreamSettings(**({"broker": broker} if broker else {}))  # type: ignore[arg-type]
    stats = run_simulated_actuators(settings, labels, state_dir, clock, seed)
    console.print(f"actuator stage stopped: {stats.decisions} decisions, verdicts {stats.verdicts}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
