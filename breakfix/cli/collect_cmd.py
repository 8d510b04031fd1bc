"""``breakfix collect SOURCE``: run one telemetry collector into Kafka or a recording file.

Every source shares the same output options (``--broker`` or ``--out``), ``--interval``, ``--once``
and ``--node``; each adds what it needs to reach its source. Events are validated before they leave
(invalid ones are dead-lettered on Kafka, dropped with a warning for files) and each round ends with
an ``agent.heartbeat`` per covered node.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import typer

from agents.collect.base import Collector, CollectorUnavailable, KafkaSink, RecordingSink, Sink, run
from agents.collect.inventory import InventoryConfig
from breakfix.cli.common import err_console, fail, print_json

collect_app = typer.Typer(
    name="collect",
    help="Collect telemetry from one source (NVML, dcgm-exporter, kernel log, Kubernetes, SLURM) "
    "into Kafka or a recording.",
    no_args_is_help=True,
)

BrokerOpt = typer.Option(
    None, "--broker", help="Kafka bootstrap, e.g. 127.0.0.1:9092 (events → breakfix.events)."
)
OutOpt = typer.Option(None, "--out", help="Write a JSON Lines recording instead ('-' = stdout, .gz = gzip).")
OnceOpt = typer.Option(False, "--once", help="Collect one round (plus inventory and heartbeat) and exit.")
InventoryOpt = typer.Option(
    None, "--inventory", help="YAML with pool/rack/sku defaults, label keys, per-node overrides."
)
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Log what the collector does.")


def _hostname() -> str:
    return socket.gethostname().split(".")[0]


def _sink(broker: str | None, out: Path | None) -> Sink:
    if (broker is None) == (out is None):
        fail(
            "give exactly one of --broker URL or --out FILE",
            "e.g. --out gpu.jsonl, or --broker 127.0.0.1:9092",
        )
    if out is not None:
        return RecordingSink(out)
    assert broker is not None
    try:
        return KafkaSink(broker.removeprefix("kafka://"))
    except Exception as err:  # aiokafka raises KafkaConnectionError and friends
        fail(
            f"cannot reach Kafka at {broker}: {err}",
            "start a broker (breakfix run --embedded) or fix --broker",
        )


def _execute(
    make: Callable[[], Collector], broker: str | None, out: Path | None, once: bool, verbose: bool
) -> None:
    """Build the collector, run it until SIGINT/SIGTERM (or one round), print what was sent."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        collector = make()
    except CollectorUnavailable as err:
        fail(str(err), code=3)
    sink = _sink(broker, out)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stats = run(collector, sink, once=once, stop=stop)
    except CollectorUnavailable as err:
        fail(str(err), code=3)
    except Exception as err:
        fail(f"{collector.name}: {type(err).__name__}: {err}", "run with -v for details", code=1)
    finally:
        sink.close()
    if out is None or str(out) != "-":
        print_json(stats.as_dict())
    else:
        err_console.print(stats.as_dict())


@collect_app.command("nvml")
def nvml(
    broker: str | None = BrokerOpt,
    out: Path | None = OutOpt,
    node: str = typer.Option(None, "--node", help="Node id (default: short hostname)."),
    interval: float = typer.Option(10.0, "--interval", min=0.1, help="Seconds between samples."),
    once: bool = OnceOpt,
    inventory: Path | None = InventoryOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Per-GPU samples and critical Xid events from NVML on this node.

    Example: breakfix collect nvml --once --out gpu.jsonl
    """
    from agents.collect.nvml import NvmlCollector

    cfg = InventoryConfig.load(inventory)
    _execute(
        lambda: NvmlCollector(node or _hostname(), interval_s=interval, inventory=cfg),
        broker,
        out,
        once,
        verbose,
    )


@collect_app.command("dcgm")
def dcgm(
    url: str = typer.Option("http://127.0.0.1:9400/metrics", "--url", help="dcgm-exporter metrics endpoint."),
    broker: str | None = BrokerOpt,
    out: Path | None = OutOpt,
    node: str = typer.Option(None, "--node", help="Node id (default: the exporter's Hostname label)."),
    interval: float = typer.Option(15.0, "--interval", min=0.1, help="Seconds between scrapes."),
    once: bool = OnceOpt,
    inventory: Path | None = InventoryOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Scrape a dcgm-exporter endpoint into gpu.sample / gpu.xid / node.inventory.

    Example: breakfix collect dcgm --url http://gpu01:9400/metrics --broker 127.0.0.1:9092
    """
    from agents.collect.dcgm import DcgmCollector

    cfg = InventoryConfig.load(inventory)
    _execute(lambda: DcgmCollector(url, node, interval_s=interval, inventory=cfg), broker, out, once, verbose)


def register(app: typer.Typer) -> None:
    app.add_typer(collect_app, name="collect")


@collect_app.command("kernel")
def kernel(
    file: Path | None = typer.Option(None, "--file", help="Follow this log file (rotation-safe)."),
    kmsg: bool = typer.Option(False, "--kmsg", help="Read /dev/kmsg (needs root or CAP_SYSLOG)."),
    journald: bool = typer.Option(False, "--journald", help="Follow `journalctl -k -f -o json`."),
    from_start: bool = typer.Option(False, "--from-start", help="With --file: read the file from its start."),
    broker: str | None = BrokerOpt,
    out: Path | None = OutOpt,
    node: str = typer.Option(None, "--node", help="Node id (default: short hostname)."),
    interval: float = typer.Option(10.0, "--interval", min=0.1, help="Seconds between heartbeats."),
    once: bool = OnceOpt,
    inventory: Path | None = InventoryOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Forward GPU/hardware kernel lines (NVRM, Xid, SXid, NVSwitch, ECC, MCE) as node.kernel.

    Example: breakfix collect kernel --file /var/log/kern.log --broker 127.0.0.1:9092
    """
    from agents.collect.kmsg import FileFollower, JournalReader, KernelLogCollector, KmsgReader, Reader

    if [file is not None, kmsg, journald].count(True) != 1:
        fail("choose one of --file PATH, --kmsg or --journald", "e.g. --file /var/log/kern.log")

    def make() -> Collector:
        reader: Reader = (
            FileFollower(file, from_start=from_start) if file else KmsgReader() if kmsg else JournalReader()
        )
        cfg = InventoryConfig.load(inventory)
        return KernelLogCollector(node or _hostname(), reader, interval_s=interval, inventory=cfg)

    _execute(make, broker, out, once, verbose)


@collect_app.command("kube")
def kube(
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="Kubeconfig file (default: ~/.kube/config)."
    ),
    in_cluster: bool = typer.Option(False, "--in-cluster", help="Use the pod's service account."),
    host: str | None = typer.Option(None, "--host", help="API server URL without auth (e.g. kubectl proxy)."),
    broker: str | None = BrokerOpt,
    out: Path | None = OutOpt,
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between cluster summaries."),
    once: bool = OnceOpt,
    inventory: Path | None = InventoryOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Watch nodes and pods: conditions, allocatable GPUs, crash loops, evictions, driver/image changes.

    Example: breakfix collect kube --kubeconfig ~/.kube/config --broker 127.0.0.1:9092
    """
    from agents.collect.kube import KubeCollector, api_client

    cfg = InventoryConfig.load(inventory)

    def make() -> Collector:
        return KubeCollector(api_client(kubeconfig, in_cluster, host), interval_s=interval, inventory=cfg)

    _execute(make, broker, out, once, verbose)


@collect_app.command("slurm")
def slurm(
    broker: str | None = BrokerOpt,
    out: Path | None = OutOpt,
    interval: float = typer.Option(30.0, "--interval", min=0.1, help="Seconds between polls."),
    timeout: float = typer.Option(
        15.0, "--timeout", min=0.5, help="Seconds before sinfo/squeue is abandoned."
    ),
    once: bool = OnceOpt,
    inventory: Path | None = InventoryOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Poll sinfo/squeue (JSON) for node states, DRAIN/DOWN reasons and who set them, pending jobs.

    Example: SLURM_CONF=/etc/slurm/slurm.conf breakfix collect slurm --broker 127.0.0.1:9092
    """
    from agents.collect.slurm import SlurmCollector

    cfg = InventoryConfig.load(inventory)
    _execute(
        lambda: SlurmCollector(interval_s=interval, inventory=cfg, timeout_s=timeout),
        broker,
        out,
        once,
        verbose,
    )
