"""``breakfix run --role sink`` (also ``breakfix sink``): every topic into the ClickHouse audit store."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import fail
from breakfix.cli.role_common import PRINT_OPT, SETTINGS_OPT, settle
from breakfix.roles.settings import SinkSettings


def sink(
    broker: str | None = typer.Option(None, "--broker", help="Kafka bootstrap servers (BREAKFIX_BROKER)."),
    store: str | None = typer.Option(
        None, "--store", help="Store DSN: http://user:pw@host:8123 or chdb:///path (BREAKFIX_STORE_DSN)."
    ),
    spool: Path | None = typer.Option(
        None, "--spool", help="Where batches wait while the store is down (default .breakfix/spool)."
    ),
    topics: str | None = typer.Option(None, "--topics", help="Comma-separated topics (default: every one)."),
    group: str | None = typer.Option(None, "--group", help="Consumer group (default breakfix-sink)."),
    migrate: bool | None = typer.Option(
        None, "--migrate/--no-migrate", help="Create tables first (an insert-only ClickHouse user cannot)."
    ),
    settings_file: Path | None = SETTINGS_OPT,
    print_settings: bool = PRINT_OPT,
) -> None:
    """Write every topic into the ClickHouse audit store, exactly once per row (a batch that fails
    waits in the spool). An embedded chdb path admits one process: on the local stack the store is
    served over HTTP by `breakfix up` (see `breakfix status`).

    Example: breakfix run --role sink --broker kafka-1:9092 --store http://sink:PASSWORD@clickhouse:8123
    --no-migrate   (better: the DSN in BREAKFIX_STORE_DSN, out of the process list)
    """
    from schemas.topics import TOPICS
    from streams.metrics import serve as serve_metrics
    from streams.sink.stage import SinkConfig, lever_keys, serve

    s = settle(
        SinkSettings,
        settings_file,
        print_settings,
        broker=broker,
        store_dsn=store,
        spool=spool,
        topics=topics,
        group=group,
        migrate=migrate,
    )
    if s.store_dsn is None:
        fail("no store to write to", "pass --store DSN or set BREAKFIX_STORE_DSN")
    if s.metrics_port is not None:
        serve_metrics(s.metrics_port, s.web_host)  # the sink's counters, like the stages'
    cfg = SinkConfig(
        bootstrap=s.broker,
        group_id=s.group,
        topics=tuple(s.topics.split(",")) if s.topics else tuple(t.name for t in TOPICS),
        topic_prefix=s.topic_prefix,
        batch_rows=s.batch_rows,
        batch_interval_s=s.batch_interval_s,
    )
    serve(cfg, s.store_dsn.get_secret_value(), s.spool, s.spool_max_bytes, s.migrate, lever_keys(s))


def register(app: typer.Typer) -> None:
    app.command("sink")(sink)
