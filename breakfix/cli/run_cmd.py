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
) -> None:
    """Run the node stage and the guard until interrupted; topics are created first.

    Example: breakfix run --broker kafka-1:9092 --workers 4 --store rocksdb
    """
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


def register(app: typer.Typer) -> None:
    app.command("run")(run)
