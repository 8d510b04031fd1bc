"""``breakfix sink``: the ClickHouse sink (every topic into the audit store) as a `breakfix` command."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from breakfix.cli.common import fail


def sink(
    broker: str = typer.Option(
        "127.0.0.1:9092", "--broker", envvar="BREAKFIX_BROKER", help="Kafka bootstrap servers."
    ),
    store: str | None = typer.Option(
        None, "--store", help="Store DSN: http://user:pw@host:8123 or chdb:///path (BREAKFIX_STORE_DSN)."
    ),
    spool: Path = typer.Option(
        Path(".breakfix/spool"), "--spool", help="Where batches wait while the store is down."
    ),
    topics: str = typer.Option("", "--topics", help="Comma-separated topics (default: every one)."),
    group: str = typer.Option("breakfix-sink", "--group", help="Consumer group."),
    no_migrate: bool = typer.Option(
        False, "--no-migrate", help="Do not create tables (an insert-only ClickHouse user cannot)."
    ),
) -> None:
    """Write every topic into the ClickHouse audit store, exactly once per row (a batch that fails
    waits in the spool). An embedded chdb path admits one process: on the local stack the store is
    served over HTTP by `breakfix up` (see `breakfix status`).

    Example: breakfix sink --broker kafka-1:9092 --store http://sink:PASSWORD@clickhouse:8123 --no-migrate
    """

    from streams.sink import main as sink_main
    from streams.store.dsn import ENV_DSN

    if not (store or os.environ.get(ENV_DSN)):
        fail("no store to write to", "pass --store DSN or set BREAKFIX_STORE_DSN")
    argv = ["--bootstrap", broker, "--spool", str(spool), "--group", group]
    argv += ["--store", store] if store else []
    argv += ["--topics", topics] if topics else []
    argv += ["--no-migrate"] if no_migrate else []
    sink_main(argv)


def register(app: typer.Typer) -> None:
    app.command("sink")(sink)
