"""``breakfix run``: the streaming pipeline (node stage + guard) as N Faust worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from breakfix.cli.common import console, fail

if TYPE_CHECKING:
    from streams.settings import StreamSettings


def run(
    broker: str | None = typer.Option(
        None, "--broker", help="Kafka bootstrap servers (default BREAKFIX_BROKER)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default BREAKFIX_WORKERS)."
    ),
    embedded: bool = typer.Option(
        False, "--embedded", help="Start the embedded Tansu broker (on --embedded-port, else a free port)."
    ),
    embedded_port: int | None = typer.Option(
        None, "--embedded-port", min=1, max=65535, help="--embedded: the broker's port (9092: the default)."
    ),
    store: str | None = typer.Option(None, "--store", help="'memory' or 'rocksdb' (default BREAKFIX_STORE)."),
    log_dir: Path | None = typer.Option(
        None, "--log-dir", help="Write each worker's log here instead of stdout."
    ),
    role: str = typer.Option(
        "pipeline", "--role", help="'pipeline' (node stage + guard) or 'actuators' (decisions -> workflows)."
    ),
    simulate: bool = typer.Option(
        False, "--simulate", help="actuators: act on a simulated fleet instead of real infrastructure."
    ),
    kube_url: str | None = typer.Option(
        None, "--kube-url", help="actuators: Kubernetes API server URL (no auth: kubectl proxy, a stand-in)."
    ),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="actuators: Kubernetes via this kubeconfig."
    ),
    kube: bool = typer.Option(
        False, "--kube", help="actuators: Kubernetes via the in-cluster account or ~/.kube/config."
    ),
    slurm: bool = typer.Option(False, "--slurm", help="actuators: SLURM via scontrol/sinfo/squeue on PATH."),
    slurm_conf: Path | None = typer.Option(
        None, "--slurm-conf", help="actuators --slurm: SLURM_CONF to use."
    ),
    slurm_gpus: int | None = typer.Option(
        None, "--slurm-gpus", min=1, help="actuators --slurm: GPUs per node validation expects back (GRES)."
    ),
    node_agent: bool = typer.Option(
        False,
        "--node-agent",
        help="actuators: GPU reset/reboot/diag via `breakfix node-agent` over Kafka (with --simulate: "
        "agents run with --simulate, the rest of the fleet is simulated).",
    ),
    tickets: Path | None = typer.Option(
        None, "--tickets", help="actuators: built-in ticket store directory."
    ),
    jira: str | None = typer.Option(
        None, "--jira", help="actuators: Jira base URL (BREAKFIX_JIRA_USER/BREAKFIX_JIRA_TOKEN)."
    ),
    jira_project: str | None = typer.Option(None, "--jira-project", help="actuators --jira: project key."),
    machines: Path | None = typer.Option(
        None, "--machines", help="actuators: machine records for NICo-style health overrides."
    ),
    nico: Path | None = typer.Option(
        None, "--nico", help="actuators: NICo as repair target (YAML file; JWT in BREAKFIX_NICO_TOKEN)."
    ),
    actuator: list[str] = typer.Option(
        [],
        "--actuator",
        help="actuators: a registered kind built from its own config file, KIND or KIND=FILE (repeatable).",
    ),
    workload_cmd: str | None = typer.Option(
        None,
        "--workload-cmd",
        help="actuators: validation's test workload command ({node}, {gpu} filled in).",
    ),
    catalog: Path | None = typer.Option(
        None, "--catalog", help="actuators: playbook directory (default: the shipped catalog)."
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
    step_speed: float | None = typer.Option(
        None, "--step-speed", min=0.001, help="actuators --simulate: steps this much faster (else --speed)."
    ),
    until: float | None = typer.Option(
        None, "--until", help="actuators --simulate: fleet clock end (epoch s)."
    ),
    seed: int = typer.Option(0, "--seed", help="actuators --simulate: seed of simulated step failures."),
) -> None:
    """Run the node stage and the guard (or, with --role actuators, the actuator stage) until interrupted.

    Example: breakfix run --broker kafka-1:9092 --workers 4 --store rocksdb
    Example: breakfix run --embedded --embedded-port 9092   (or `breakfix up` for the whole local stack)
    Example: breakfix run --role actuators --simulate --labels truth.jsonl --broker 127.0.0.1:9092
    Example: breakfix run --role actuators --simulate --node-agent --step-speed 100   (as `breakfix up`)
    Example: breakfix run --role actuators --broker kafka-1:9092 --kubeconfig ~/.kube/config --node-agent
      --tickets /var/lib/breakfix/tickets --state-dir /var/lib/breakfix/actuators
    Example: breakfix run --role actuators --broker kafka-1:9092 --slurm --slurm-gpus 8 --node-agent
    Example: breakfix run --role actuators --broker kafka-1:9092 --nico /etc/breakfix/nico.yaml --node-agent
    """
    if role == "actuators":
        if simulate:
            clock = (speed, origin, wall_origin, lag, until, step_speed)
            _run_simulated(broker, labels, state_dir, clock, seed, node_agent)
            return
        _run_real(
            broker,
            state_dir,
            catalog,
            dict(
                node_agent=node_agent,
                kube=kube,
                kube_url=kube_url,
                kubeconfig=kubeconfig,
                slurm=slurm,
                slurm_conf=slurm_conf,
                slurm_gpus=slurm_gpus,
                tickets_dir=tickets,
                jira_url=jira,
                jira_project=jira_project,
                machines_dir=machines,
                nico_config=nico,
                plugins=_plugins(actuator),
                workload_cmd=workload_cmd,
            ),
        )
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
        _dev_keys(StreamSettings())
        with EmbeddedBroker(port=embedded_port) as b:
            console.print(f"embedded Tansu broker on {b.url} (memory storage: topics vanish when it stops)")
            raise typer.Exit(supervise(StreamSettings(broker=b.url, **overrides), log_dir))  # type: ignore[arg-type]
    settings = StreamSettings(**({"broker": broker} if broker else {}), **overrides)  # type: ignore[arg-type]
    _check_keys(settings, "guard")
    console.print(f"{settings.workers} worker(s) on {settings.broker}, store {settings.store}")
    raise typer.Exit(supervise(settings, log_dir))


def _check_keys(settings: StreamSettings, role: str) -> None:
    """Refuse to start a signer or verifier without its keys, saying how to make them."""
    from schemas.signing import SigningError
    from streams.keys import load_keyring, load_signer

    try:
        load_signer(settings, role)
        load_keyring(settings)
    except SigningError as err:
        fail(str(err), "see docs/security/signed-path.md for keys on several hosts")


def _dev_keys(settings: StreamSettings) -> None:
    """--embedded is one host: create one key per role where none exist yet."""
    from streams.keys import single_host_keys, trust_path

    if not trust_path(settings).is_file():
        single_host_keys(settings.keys_dir)
        console.print(f"created signing keys for every role in {settings.keys_dir} (single host)")


def _run_simulated(
    broker: str | None,
    labels: Path | None,
    state_dir: Path,
    clock_args: tuple[float, float | None, float | None, float, float | None, float | None],
    seed: int,
    node_agent: bool,
) -> None:
    """A simulated fleet; with ``node_agent`` its GPU operations go to `breakfix node-agent` processes
    over Kafka (signed both ways, as in production), whose own GPUs are simulated."""
    import time

    from breakfix.actuation import ActuationConfigError, ActuatorOptions, build_actuators
    from breakfix.demo.actuation import FleetClock
    from breakfix.demo.stage_main import run_simulated_actuators
    from streams.settings import StreamSettings

    speed, origin, wall_origin, lag, until, step_speed = clock_args
    now = time.time()
    start = origin if origin is not None else now
    clock = FleetClock(start, wall_origin or now, speed, lag, until, step_speed)
    settings = StreamSettings(**({"broker": broker} if broker else {}))  # type: ignore[arg-type]
    _check_keys(settings, "actuators")
    opts = ActuatorOptions(
        broker=settings.broker, topic_prefix=settings.topic_prefix, node_agent=node_agent, symptoms=False
    )
    try:
        wired = build_actuators(opts, strict=True) if node_agent else None
    except ActuationConfigError as err:
        fail(str(err), "create the topics first (`breakfix topics create`) and check --broker")
    real = [a for a in wired.actuators if a.name == "node_agent"] if wired else []
    try:
        stats = run_simulated_actuators(settings, labels, state_dir, clock, seed, real=real)
    finally:
        if wired is not None:
            wired.close()
    console.print(f"actuator stage stopped: {stats.decisions} decisions, verdicts {stats.verdicts}")


_NOTHING = (
    "configure at least one of --kube-url/--kubeconfig/--kube, --slurm, --node-agent, --tickets/--jira, "
    "--machines, --nico, --actuator KIND=FILE (or --simulate for a simulated fleet)"
)


def _plugins(specs: list[str]) -> tuple[tuple[str, Path | None], ...]:
    """``--actuator KIND[=FILE]`` values as (kind, config file) pairs."""
    from breakfix.actuation import ActuationConfigError, parse_plugin

    try:
        return tuple(parse_plugin(spec) for spec in specs)
    except ActuationConfigError as err:
        fail(str(err), "name a registered actuator kind and, where it needs one, its config file")


def _run_real(
    broker: str | None, state_dir: Path, catalog_dir: Path | None, chosen: dict[str, object]
) -> None:
    """The actuator stage on real infrastructure: only what was configured is registered, and a
    playbook needing anything else is refused before its first step, naming the option to add."""
    from actuators.playbooks import PlaybookError, load_catalog
    from breakfix.actuation import ActuationConfigError, ActuatorOptions, build_actuators, engine_handler
    from breakfix.demo.stage_main import run_actuator_stage
    from policy.model import load_policy
    from streams.settings import StreamSettings

    if not any(chosen.values()):
        fail("no actuator configured", _NOTHING)
    settings = StreamSettings(**({"broker": broker} if broker else {}))  # type: ignore[arg-type]
    _check_keys(settings, "actuators")
    try:
        catalog = load_catalog(catalog_dir) if catalog_dir else load_catalog()
    except PlaybookError as err:
        fail(f"playbook catalog: {err}", "fix the named file and key, or drop --catalog for the shipped one")
    opts = ActuatorOptions(
        broker=settings.broker,
        topic_prefix=settings.topic_prefix,
        auto_repair_enabled=load_policy().auto_repair_enabled,
        **chosen,  # type: ignore[arg-type]
    )
    try:
        wired = build_actuators(opts, strict=True)
    except ActuationConfigError as err:
        fail(str(err), "check the option named above, or leave that actuator out")
    try:
        console.print(f"actuators on {settings.broker}: {', '.join(wired.kinds)}")
        for kind, hint in wired.unconfigured.items():
            console.print(f"  not configured: {kind} - {hint}")
        for note in wired.notes:
            console.print(f"  note: {note}")
        served = sorted(
            name
            for name, pb in catalog.playbooks.items()
            if {s.actuator for s in [*pb.steps, *pb.rollback]} <= set(wired.kinds)
        )
        console.print(f"  playbooks runnable: {', '.join(served) or 'none'}")
        make = engine_handler(
            wired.actuators,
            state_dir / "journal.sqlite",
            facts=wired.facts,
            unconfigured=wired.unconfigured,
            catalog=catalog,
        )
        stats = run_actuator_stage(settings, make, state_dir)
    finally:
        wired.close()
    console.print(f"actuator stage stopped: {stats.decisions} decisions, verdicts {stats.verdicts}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
