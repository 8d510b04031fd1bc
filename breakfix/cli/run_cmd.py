"""``breakfix run --role ROLE``: every long-running process, each with one settings model.

Roles: pipeline (node stage + guard, N Faust workers), actuators (decisions -> workflows), sink
(topics -> audit store), api (operator HTTP API), node-agent (on each GPU node), metrics (fleet
gauges for Prometheus), mcp (MCP tools over the API). Each role's options, settings and
``--print-settings`` are its own: ``breakfix run --role ROLE --help``. ``breakfix serve``, ``breakfix
sink`` and ``breakfix node-agent`` are the same commands under their older names.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from breakfix.cli.common import console, fail
from breakfix.cli.role_common import PRINT_OPT, SETTINGS_OPT, settle
from breakfix.roles.settings import ROLES, ActuatorSettings, PipelineSettings

if TYPE_CHECKING:
    from streams.settings import StreamSettings

ROLE_COMMANDS: dict[str, str] = {
    "pipeline": "breakfix.cli.run_cmd:pipeline",
    "actuators": "breakfix.cli.run_cmd:actuators",
    "sink": "breakfix.cli.sink_cmd:sink",
    "api": "breakfix.cli.serve_cmd:serve",
    "node-agent": "breakfix.cli.nodeagent_cmd:node_agent",
    "metrics": "breakfix.cli.metrics_cmd:metrics",
    "mcp": "breakfix.cli.mcp_cmd:mcp",
}
"""The command function of each role in ``breakfix.roles.settings.ROLES``."""


def role_command(role: str) -> Any:
    """The click command of ``role`` (what ``breakfix run --role ROLE`` parses its options with)."""
    module, name = ROLE_COMMANDS[role].split(":")
    sub = typer.Typer(add_completion=False)
    sub.command(name=role)(getattr(importlib.import_module(module), name))
    return typer.main.get_command(sub)


def run(
    ctx: typer.Context,
    role: str = typer.Option(
        "pipeline", "--role", help=f"The process to run: {', '.join(ROLES)}. Its options: --role ROLE --help."
    ),
) -> None:
    """Run one process until SIGTERM: --role pipeline|actuators|sink|api|node-agent|metrics|mcp."""
    if role not in ROLE_COMMANDS:
        fail(f"unknown role {role!r}", f"use --role with one of: {', '.join(ROLE_COMMANDS)}")
    role_command(role).main(args=list(ctx.args), prog_name=f"breakfix run --role {role}")


def pipeline(
    broker: str | None = typer.Option(None, "--broker", help="Kafka bootstrap servers (BREAKFIX_BROKER)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes (BREAKFIX_WORKERS)."),
    embedded: bool | None = typer.Option(
        None,
        "--embedded/--no-embedded",
        help="Start the embedded Tansu broker (on --embedded-port, else a free port).",
    ),
    embedded_port: int | None = typer.Option(
        None, "--embedded-port", min=1, max=65535, help="--embedded: the broker's port (9092: the default)."
    ),
    store: str | None = typer.Option(None, "--store", help="'memory' or 'rocksdb' (BREAKFIX_STORE)."),
    log_dir: Path | None = typer.Option(
        None, "--log-dir", help="Write each worker's log here instead of stdout."
    ),
    settings_file: Path | None = SETTINGS_OPT,
    print_settings: bool = PRINT_OPT,
) -> None:
    """The node stage and the guard as N Faust worker processes, until interrupted.

    Other roles: breakfix run --role actuators|sink|api|node-agent|metrics|mcp --help.

    Example: breakfix run --role pipeline --broker kafka-1:9092 --workers 4 --store rocksdb
    Example: breakfix run --embedded --embedded-port 9092   (or `breakfix up` for the whole local stack)
    Example: BREAKFIX_BROKER=kafka-1:9092 breakfix run --role pipeline --print-settings
    """
    from streams.kafka.embedded_broker import EmbeddedBroker
    from streams.pipeline.workers import supervise

    if store is not None and store not in ("memory", "rocksdb"):
        fail(f"unknown store {store!r}", "use --store memory or --store rocksdb")
    settings = settle(
        PipelineSettings,
        settings_file,
        print_settings,
        broker=broker,
        workers=workers,
        embedded=embedded,
        embedded_port=embedded_port,
        store=store,
        log_dir=log_dir,
    )
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
    if settings.embedded:
        if broker:
            fail("--embedded starts its own broker: drop --broker")
        _dev_keys(settings)
        with EmbeddedBroker(port=settings.embedded_port) as b:
            console.print(f"embedded Tansu broker on {b.url} (memory storage: topics vanish when it stops)")
            live = settings.model_copy(update={"broker": b.url})
            raise typer.Exit(supervise(live, settings.log_dir, settings.create_topics))
    _check_keys(settings, "guard")
    console.print(f"{settings.workers} worker(s) on {settings.broker}, store {settings.store}")
    raise typer.Exit(supervise(settings, settings.log_dir, settings.create_topics))


def actuators(
    broker: str | None = typer.Option(None, "--broker", help="Kafka bootstrap servers (BREAKFIX_BROKER)."),
    simulate: bool | None = typer.Option(
        None, "--simulate/--no-simulate", help="Act on a simulated fleet instead of real infrastructure."
    ),
    kube_url: str | None = typer.Option(
        None, "--kube-url", help="Kubernetes API server URL (no auth: kubectl proxy, a stand-in)."
    ),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help="Kubernetes via this kubeconfig."),
    kube: bool | None = typer.Option(
        None, "--kube/--no-kube", help="Kubernetes via the in-cluster account or ~/.kube/config."
    ),
    slurm: bool | None = typer.Option(
        None, "--slurm/--no-slurm", help="SLURM via scontrol/sinfo/squeue on PATH."
    ),
    slurm_conf: Path | None = typer.Option(None, "--slurm-conf", help="--slurm: SLURM_CONF to use."),
    slurm_gpus: int | None = typer.Option(
        None, "--slurm-gpus", min=1, help="--slurm: GPUs per node validation expects back (GRES)."
    ),
    node_agent: bool | None = typer.Option(
        None,
        "--node-agent/--no-node-agent",
        help="GPU reset/reboot/diag via `breakfix run --role node-agent` over Kafka (with --simulate: "
        "agents run with --simulate, the rest of the fleet is simulated).",
    ),
    tickets: Path | None = typer.Option(None, "--tickets", help="Built-in ticket store directory."),
    jira: str | None = typer.Option(
        None, "--jira", help="Jira base URL (BREAKFIX_JIRA_USER/BREAKFIX_JIRA_TOKEN)."
    ),
    jira_project: str | None = typer.Option(None, "--jira-project", help="--jira: project key."),
    machines: Path | None = typer.Option(
        None, "--machines", help="Machine records for NICo-style health overrides."
    ),
    nico: Path | None = typer.Option(
        None, "--nico", help="NICo as repair target (YAML file; JWT in BREAKFIX_NICO_TOKEN)."
    ),
    actuator: list[str] | None = typer.Option(
        None,
        "--actuator",
        help="A registered kind built from its own config file, KIND or KIND=FILE (repeatable).",
    ),
    workload_cmd: str | None = typer.Option(
        None, "--workload-cmd", help="Validation's test workload command ({node}, {gpu} filled in)."
    ),
    catalog: Path | None = typer.Option(
        None, "--catalog", help="Playbook directory (default: the shipped catalog)."
    ),
    labels: Path | None = typer.Option(
        None, "--labels", help="--simulate: ground truth from 'breakfix simulate --labels'."
    ),
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help="Workflow journal and fleet ledger (default .breakfix/actuators)."
    ),
    speed: float | None = typer.Option(
        None, "--speed", min=0.001, help="--simulate: fleet seconds per second."
    ),
    origin: float | None = typer.Option(
        None, "--origin", help="--simulate: fleet time (epoch s) at --wall-origin (default: now)."
    ),
    wall_origin: float | None = typer.Option(None, "--wall-origin", help="Wall time (epoch s) of --origin."),
    lag: float | None = typer.Option(None, "--lag", min=0, help="--simulate: fleet clock lag (fleet s)."),
    step_speed: float | None = typer.Option(
        None, "--step-speed", min=0.001, help="--simulate: steps this much faster (else --speed)."
    ),
    until: float | None = typer.Option(None, "--until", help="--simulate: fleet clock end (epoch s)."),
    seed: int | None = typer.Option(None, "--seed", help="--simulate: seed of simulated step failures."),
    settings_file: Path | None = SETTINGS_OPT,
    print_settings: bool = PRINT_OPT,
) -> None:
    """The actuator stage: decisions -> workflows -> action results, until interrupted.

    Example: breakfix run --role actuators --simulate --labels truth.jsonl --broker 127.0.0.1:9092
    Example: breakfix run --role actuators --simulate --node-agent --step-speed 100   (as `breakfix up`)
    Example: breakfix run --role actuators --broker kafka-1:9092 --kubeconfig ~/.kube/config --node-agent
      --tickets /var/lib/breakfix/tickets --state-dir /var/lib/breakfix/actuators
    Example: breakfix run --role actuators --broker kafka-1:9092 --slurm --slurm-gpus 8 --node-agent
    Example: breakfix run --role actuators --broker kafka-1:9092 --nico /etc/breakfix/nico.yaml --node-agent
    """
    settings = settle(
        ActuatorSettings,
        settings_file,
        print_settings,
        broker=broker,
        simulate=simulate,
        kube_url=kube_url,
        kubeconfig=kubeconfig,
        kube=kube,
        slurm=slurm,
        slurm_conf=slurm_conf,
        slurm_gpus=slurm_gpus,
        node_agent=node_agent,
        tickets_dir=tickets,
        jira_url=jira,
        jira_project=jira_project,
        machines_dir=machines,
        nico_config=nico,
        actuators=actuator or None,
        workload_cmd=workload_cmd,
        catalog_dir=catalog,
        labels=labels,
        state_dir=state_dir,
        speed=speed,
        origin=origin,
        wall_origin=wall_origin,
        lag=lag,
        step_speed=step_speed,
        until=until,
        seed=seed,
    )
    if settings.simulate:
        _run_simulated(settings)
    else:
        _run_real(settings)


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


def _run_simulated(s: ActuatorSettings) -> None:
    """The stage over a simulated fleet (the demo's actuators, plugged in as the handler factory);
    with ``node_agent`` its GPU operations go to `breakfix node-agent` processes over Kafka (signed
    both ways, as in production), whose own GPUs are simulated."""
    import time

    from breakfix.actuation import ActuationConfigError, ActuatorOptions, build_actuators
    from breakfix.demo.actuation import FleetClock, simulated_factory
    from streams.actuation.main import run_actuator_stage

    now = time.time()
    start = s.origin if s.origin is not None else now
    clock = FleetClock(start, s.wall_origin or now, s.speed, s.lag, s.until, s.step_speed)
    _check_keys(s, "actuators")
    opts = ActuatorOptions(
        broker=s.broker, topic_prefix=s.topic_prefix, node_agent=s.node_agent, symptoms=False
    )
    try:
        wired = build_actuators(opts, strict=True) if s.node_agent else None
    except ActuationConfigError as err:
        fail(str(err), "create the topics first (`breakfix topics create`) and check --broker")
    real = [a for a in wired.actuators if a.name == "node_agent"] if wired else []
    try:
        make = simulated_factory(s.labels, s.state_dir, clock, s.seed, real=real)
        stats = run_actuator_stage(s, make, s.state_dir)
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


def _run_real(s: ActuatorSettings) -> None:
    """The actuator stage on real infrastructure: only what was configured is registered, and a
    playbook needing anything else is refused before its first step, naming the option to add."""
    from actuators.playbooks import PlaybookError, load_catalog
    from breakfix.actuation import ActuationConfigError, ActuatorOptions, build_actuators, engine_handler
    from policy.model import load_policy
    from streams.actuation.main import run_actuator_stage

    chosen: dict[str, Any] = dict(
        node_agent=s.node_agent,
        kube=s.kube,
        kube_url=s.kube_url,
        kubeconfig=s.kubeconfig,
        slurm=s.slurm,
        slurm_conf=s.slurm_conf,
        slurm_gpus=s.slurm_gpus,
        tickets_dir=s.tickets_dir,
        jira_url=s.jira_url,
        jira_project=s.jira_project,
        machines_dir=s.machines_dir,
        nico_config=s.nico_config,
        plugins=_plugins(s.actuators),
        workload_cmd=s.workload_cmd,
    )
    if not any(chosen.values()):
        fail("no actuator configured", _NOTHING)
    settings = s
    _check_keys(settings, "actuators")
    try:
        catalog = load_catalog(s.catalog_dir) if s.catalog_dir else load_catalog()
    except PlaybookError as err:
        fail(f"playbook catalog: {err}", "fix the named file and key, or drop --catalog for the shipped one")
    opts = ActuatorOptions(
        broker=settings.broker,
        topic_prefix=settings.topic_prefix,
        auto_repair_enabled=load_policy().auto_repair_enabled,
        **chosen,
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
            s.state_dir / "journal.sqlite",
            facts=wired.facts,
            unconfigured=wired.unconfigured,
            catalog=catalog,
        )
        stats = run_actuator_stage(settings, make, s.state_dir)
    finally:
        wired.close()
    console.print(f"actuator stage stopped: {stats.decisions} decisions, verdicts {stats.verdicts}")


def register(app: typer.Typer) -> None:
    app.command(
        "run",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    )(run)
