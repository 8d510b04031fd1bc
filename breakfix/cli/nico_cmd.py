"""``breakfix nico poll``: find NICo's repair work and put it on the events topic.

NICo's repair automation discovers work by polling; this is the product's poll. Each machine with a
``repair-request`` (or ``request-online-repair``) override becomes one ``tenant.report`` on the events
topic, so it reaches the node stage like any tenant's report: the guard decides, and the actuator
stage (``breakfix run --role actuators --nico FILE``) runs the repair playbook. Nothing is repaired
here. Each report is sealed with the ``controller`` key (the product's own client for an external
controller), the only signer besides the API the node stage accepts tenant reports from. Alerts
(auto-repair disabled, a request nobody claims, a machine out for repair) are printed and counted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import typer

from breakfix.cli.common import console, fail

app = typer.Typer(help="NICo (NVIDIA's Infra Controller) as the quarantine and repair target.")


@app.command("poll")
def poll(
    nico: Path = typer.Option(..., "--nico", help="NICo config YAML (JWT in BREAKFIX_NICO_TOKEN)."),
    broker: str | None = typer.Option(
        None, "--broker", help="Kafka bootstrap servers (default BREAKFIX_BROKER)."
    ),
    interval: float = typer.Option(60.0, "--interval", min=5.0, help="Seconds between polls."),
    once: bool = typer.Option(False, "--once", help="Poll once and exit."),
) -> None:
    """Poll NICo for machines to repair and publish each as a tenant report.

    Example: BREAKFIX_NICO_TOKEN=$(cat /run/secrets/nico-jwt) breakfix nico poll
    --nico /etc/breakfix/nico.yaml --broker kafka-1:9092
    """
    from actuators.base import ActuatorError
    from actuators.nico.config import NicoConfigError, load_config
    from actuators.nico.connect import connect
    from actuators.nico.poller import Alerted, NicoPoller
    from schemas.signing import SigningError
    from schemas.topics import Topic
    from streams.kafka.producer import EventProducer
    from streams.keys import load_signer
    from streams.settings import StreamSettings

    try:
        cfg = load_config(nico)
    except NicoConfigError as err:
        fail(str(err), "fix the file or the variable named above")
    if not cfg.grpc_target:
        fail("the poll reads health reports from NICo's core", f"add `grpc: HOST:PORT` to {nico}")
    settings = StreamSettings(broker=broker) if broker else StreamSettings()
    try:  # the node stage accepts a tenant report only from a trusted signer: this is the controller's
        signer = load_signer(settings, "controller")
    except SigningError as err:
        fail(str(err), "the poll signs what it publishes with the `controller` key")
    clients = connect(cfg)
    assert clients.health is not None
    counts: Counter[str] = Counter()

    def alerted(a: Alerted) -> None:
        counts[f"alert:{a.kind}"] += 1
        console.print(f"[yellow]{a.kind}[/] {a.machine_id}: {a.detail}")

    async def run() -> None:
        producer = EventProducer(
            settings.broker,
            topic=settings.topic(Topic.EVENTS),
            deadletter_topic=settings.topic(Topic.DEADLETTER),
        )
        await producer.start()
        pending: list[dict[str, object]] = []
        poller = NicoPoller(
            clients.rest, clients.health, pending.append, own_source=cfg.source,  # type: ignore[arg-type]
            max_wait_s=cfg.max_wait_s, on_alert=alerted, site_id=cfg.site_id,
        )  # fmt: skip
        try:
            while True:
                try:
                    poller.poll_once(time.time())
                except ActuatorError as err:
                    counts["poll_failed"] += 1
                    console.print(f"[red]poll failed[/]: {err.detail} (check `url`/`grpc` and the token)")
                for ev in pending:
                    # Sealed in the form the producer sends (validated and normalised), so the
                    # signature holds over exactly the bytes the node stage reads.
                    await producer.send(signer.seal(_normalised(ev), time.time()), "nico-poller")
                    counts["tenant.report"] += 1
                    console.print(f"repair work: {ev['node']} ({ev['data']['category']})")  # type: ignore[index]
                pending.clear()
                await producer.flush()
                if once:
                    return
                await asyncio.sleep(interval)
        finally:
            await producer.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        clients.close()
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to repair")
    if once and counts["poll_failed"]:
        raise typer.Exit(1)


def _normalised(event: dict[str, object]) -> dict[str, object]:
    """The event as the producer will send it (defaults filled, times in one format)."""
    import orjson

    from schemas.deadletter import DeadLetter
    from schemas.recording import dumps
    from streams.kafka.producer import check

    parsed = check(event, "nico-poller")
    if isinstance(parsed, DeadLetter):  # the poll built it: a bug, not input; let the producer refuse it
        return event
    loaded: dict[str, object] = orjson.loads(dumps(parsed))
    return loaded


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="nico")
