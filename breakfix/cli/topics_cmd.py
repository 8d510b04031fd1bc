"""``breakfix topics create|list``: the catalogue's topics, with partition counts and compaction."""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table

from breakfix.cli.common import console, print_json
from schemas.topics import TOPICS

topics_app = typer.Typer(help="Kafka topics of the pipeline (schemas/topics.py).", no_args_is_help=True)


@topics_app.command("create")
def create(
    broker: str | None = typer.Option(
        None, "--broker", help="Kafka bootstrap servers (default BREAKFIX_BROKER)."
    ),
    replication: int = typer.Option(1, "--replication-factor", min=1, help="Replicas per partition."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Create every missing topic; existing ones are left as they are.

    Example: breakfix topics create --broker kafka-1:9092 --replication-factor 3
    """
    from streams.kafka.topics import create_topics
    from streams.settings import StreamSettings

    settings = StreamSettings(broker=broker) if broker else StreamSettings()
    outcome = asyncio.run(create_topics(settings, replication))
    if as_json:
        print_json([o.__dict__ for o in outcome])
        return
    table = Table(title=f"topics on {settings.broker}")
    for col in ("topic", "partitions", "compacted", "status"):
        table.add_column(col)
    for o in outcome:
        table.add_row(
            o.name, str(o.partitions), "yes" if o.compacted else "", "created" if o.created else "exists"
        )
    console.print(table)


@topics_app.command("list")
def list_topics() -> None:
    """Print the catalogue: name, partitions, key, compaction, schema.

    Example: breakfix topics list
    """
    table = Table(title="topic catalogue")
    for col in ("topic", "partitions", "key", "compacted", "schema", "what"):
        table.add_column(col)
    for t in TOPICS:
        table.add_row(t.name, str(t.partitions), t.key, "yes" if t.compacted else "", t.schema, t.doc)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(topics_app, name="topics")
