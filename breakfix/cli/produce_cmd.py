"""``breakfix produce``: validate events (JSON lines) and send them to the events topic."""

from __future__ import annotations

import asyncio

import typer

from breakfix.cli.common import console, fail, print_json
from schemas.topics import Topic


def produce(
    file: str = typer.Argument("-", help="JSON lines to send ('-' reads stdin; .gz is detected)."),
    broker: str | None = typer.Option(
        None, "--broker", help="Kafka bootstrap servers (default BREAKFIX_BROKER)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    sign_as: str | None = typer.Option(
        None,
        "--sign-as",
        help="Seal each event with this role's key (e.g. controller for an external repair controller's "
        "repair.status): the pipeline accepts lifecycle events only from their signed origin.",
    ),
) -> None:
    """Validate each line against the contract; send valid events keyed by node, refused ones to the
    dead-letter topic with their reason. Exit 1 when any line was refused.

    Example: breakfix produce repair-status.jsonl --sign-as controller

    Example: echo '{"id":"k1","type":"gpu.xid","source":"me","time":"2025-01-01T00:00:00Z",
    "node":"gpu01","data":{"gpu":0,"xid":79}}' | breakfix produce --broker kafka-1:9092
    """
    import time
    from pathlib import Path

    import orjson

    from schemas.recording import iter_lines
    from streams.kafka.producer import EventProducer
    from streams.settings import StreamSettings

    if file != "-" and not Path(file).is_file():
        fail(f"no such file: {file}", "pass a JSON lines file, or '-' for stdin")
    settings = StreamSettings(broker=broker) if broker else StreamSettings()
    signer = None
    if sign_as:
        from schemas.signing import SigningError
        from streams.keys import load_signer

        try:
            signer = load_signer(settings, sign_as)
        except SigningError as err:
            fail(str(err), "create the key with `breakfix keys create --role ROLE`")

    async def send_all() -> EventProducer:
        p = EventProducer(
            settings.broker,
            topic=settings.topic(Topic.EVENTS),
            deadletter_topic=settings.topic(Topic.DEADLETTER),
        )
        await p.start()
        try:
            for n, raw in iter_lines(file):
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict):
                    if signer is not None:
                        obj = signer.seal(obj, time.time())
                    await p.send(obj, f"{file}:{n}")
                else:  # not an envelope at all: refused here, reported, never sent
                    p.sent["dead_letter:malformed_json"] += 1
                    console.print(f"[red]{file}:{n}: not a JSON object[/]")
            await p.flush()
        finally:
            await p.stop()
        return p

    producer = asyncio.run(send_all())
    counts = dict(producer.sent)
    if as_json:
        print_json(counts)
    else:
        for name, n in sorted(counts.items()):
            console.print(f"{name}: {n}")
    if any(k.startswith("dead_letter:") for k in counts):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("produce")(produce)
