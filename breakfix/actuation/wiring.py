"""Which real actuators to register, from what the operator configured, and what is missing.

Both user-facing entry points build their actuators here: ``breakfix run --role actuators`` (the
actuator stage) and ``breakfix serve`` (the HTTP API's plans). Each kind is registered only when it
was configured; a kind left out is listed in :attr:`Wired.unconfigured` with the option that would
configure it, and the workflow engine quotes that hint when a playbook needs the kind, so a refused
run says what to do (``kubernetes (configure --kube-url URL or --kubeconfig FILE)``).

``strict`` decides what happens when a requested kind cannot be built (no kubeconfig, a missing
topic): the stage fails at start-up (a half-wired stage would refuse every repair later); the API
serves without it and reports a note, since reads and levers still work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from actuators.base import Actuator
from actuators.commands import SubprocessRunner
from actuators.health import HealthOverrideActuator, JsonMachineStore
from actuators.registry import BuildContext, hints, kind
from actuators.tickets import JiraBackend, JsonTicketStore, TicketActuator, TicketService
from actuators.validation import GpuCapacity, Symptoms, Validator
from actuators.workflow import NodeFacts
from schemas.topics import Topic

T = TypeVar("T")


class ActuationConfigError(ValueError):
    """A requested actuator cannot be built; the message says what to fix."""


@dataclass(frozen=True)
class ActuatorOptions:
    """What the operator asked for. ``broker`` carries node-agent commands and the symptom feed."""

    broker: str | None = None
    topic_prefix: str = ""
    node_agent: bool = False
    kube: bool = False
    kube_url: str | None = None
    kubeconfig: Path | None = None
    slurm: bool = False
    slurm_conf: Path | None = None
    slurm_gpus: int | None = None
    """GPUs each SLURM node should register (GRES) for validation's allocatable check."""
    tickets_dir: Path | None = None
    jira_url: str | None = None
    jira_project: str | None = None
    machines_dir: Path | None = None
    nico_config: Path | None = None
    """NICo as the quarantine and repair target (actuators/nico/config.py describes the file)."""
    auto_repair_enabled: bool = False
    workload_cmd: str | None = None
    symptoms: bool = True
    """Follow the events topic for validation's quiet window (needs ``broker``)."""
    plugins: tuple[tuple[str, Path | None], ...] = ()
    """``--actuator KIND[=FILE]``: registered kinds built by their own builder from their config file."""

    @property
    def wants_kube(self) -> bool:
        return self.kube or bool(self.kube_url) or self.kubeconfig is not None


@dataclass
class Wired:
    actuators: list[Actuator]
    facts: NodeFacts | None = None
    unconfigured: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return sorted(a.name for a in self.actuators)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def parse_plugin(spec: str) -> tuple[str, Path | None]:
    """An ``--actuator KIND[=FILE]`` value as (kind, config file).

    >>> parse_plugin("bmc=/etc/breakfix/bmc.json"), parse_plugin("bmc")
    (('bmc', PosixPath('/etc/breakfix/bmc.json')), ('bmc', None))
    """
    name, sep, path = spec.partition("=")
    if not name or (sep and not path):
        raise ActuationConfigError(f"--actuator {spec!r}: write --actuator KIND or --actuator KIND=FILE")
    return name, Path(path) if path else None


def build_actuators(
    opts: ActuatorOptions,
    *,
    health: HealthOverrideActuator | None = None,
    tickets: TicketService | None = None,
    strict: bool = True,
) -> Wired:
    """Register what ``opts`` configures. ``health``/``tickets``: already-built parts the caller
    shares with other code (the API's machine and ticket routes) instead of ``--machines``/``--tickets``."""
    if opts.wants_kube and opts.slurm:
        raise ActuationConfigError(
            "configure one scheduler per actuator stage: --slurm or Kubernetes (--kube-url/--kubeconfig), "
            "not both (every decision would match a playbook of each)"
        )
    wired = Wired([])
    _optional(wired, strict, "health_override", lambda: _add(wired, health or _health(opts)))
    _optional(wired, strict, "ticket", lambda: _add(wired, _tickets(opts, tickets)))
    if opts.nico_config is not None:
        _optional(wired, strict, "nico", lambda: _plugin(opts, wired, "nico", opts.nico_config))
    for name, config in opts.plugins:
        _optional(wired, strict, name, lambda name=name, config=config: _plugin(opts, wired, name, config))  # type: ignore[misc]
    agent = _optional(wired, strict, "node_agent", lambda: _node_agent(opts, wired))
    capacity: GpuCapacity | None = None
    if opts.wants_kube:
        capacity = _optional(wired, strict, "kubernetes", lambda: _kubernetes(opts, wired))
    if opts.slurm:
        capacity = _optional(wired, strict, "slurm", lambda: _slurm(opts, wired))
    symptoms = _symptoms(opts, wired, strict)
    workload = None
    if opts.workload_cmd:
        from breakfix.actuation.workload import CommandWorkload

        workload = CommandWorkload(opts.workload_cmd)
    wired.actuators.append(Validator(agent=agent, capacity=capacity, workload=workload, symptoms=symptoms))
    registered = {a.name for a in wired.actuators}
    wired.unconfigured = {k: hint for k, hint in hints().items() if k not in registered}
    return wired


def _optional(wired: Wired, strict: bool, kind: str, build: Callable[[], T | None]) -> T | None:
    """Build one kind; None when not configured. A failure is fatal when ``strict``, else a note."""
    try:
        built = build()
    except ActuationConfigError:
        raise
    except Exception as err:  # a missing kubeconfig, an absent topic, an unreachable broker
        if strict:
            raise ActuationConfigError(f"{kind} actuator: {err}") from err
        wired.notes.append(f"{kind} actuator not registered: {err}")
        return None
    return built


def _health(opts: ActuatorOptions) -> HealthOverrideActuator | None:
    if opts.machines_dir is None:
        return None
    return HealthOverrideActuator(JsonMachineStore(opts.machines_dir), opts.auto_repair_enabled)


def _tickets(opts: ActuatorOptions, service: TicketService | None) -> TicketActuator | None:
    if service is None and opts.tickets_dir and opts.jira_url:
        raise ActuationConfigError("tickets go to one place: --tickets DIR or --jira URL, not both")
    if service is None and opts.tickets_dir is not None:
        service = TicketService(JsonTicketStore(opts.tickets_dir))
    if service is None and opts.jira_url:
        if not opts.jira_project:
            raise ActuationConfigError("--jira needs --jira-project KEY")
        backend = JiraBackend(
            opts.jira_url,
            opts.jira_project,
            user=os.environ.get("BREAKFIX_JIRA_USER"),
            token=os.environ.get("BREAKFIX_JIRA_TOKEN"),
        )
        service = TicketService(backend)
    return TicketActuator(service) if service is not None else None


def _plugin(opts: ActuatorOptions, wired: Wired, name: str, config: Path | None) -> Actuator:
    """A kind configured generically: its registered builder gets its config file and the broker."""
    try:
        build = kind(name).builder()
    except (KeyError, LookupError) as err:
        raise ActuationConfigError(str(err).strip('"')) from err
    built = build(BuildContext(config, opts.broker, opts.topic_prefix, wired.closers.append))
    if built.name != name:
        raise ActuationConfigError(f"the builder of {name!r} returned a {built.name!r} actuator")
    wired.actuators.append(built)
    return built


def _node_agent(opts: ActuatorOptions, wired: Wired) -> Actuator | None:
    if not opts.node_agent:
        return None
    if not opts.broker:
        raise ActuationConfigError("--node-agent sends commands over Kafka: it needs --broker")
    from actuators.nodeagent import NodeAgentActuator
    from actuators.nodeagent.kafka_transport import KafkaCommandTransport
    from schemas.signing import SigningError
    from streams.kafka.client import kafka_options
    from streams.keys import load_keyring, load_signer
    from streams.settings import StreamSettings

    settings = StreamSettings()
    try:  # commands carry the actuator stage's seal; agents' answers are verified
        signer, keyring = load_signer(settings, "actuators"), load_keyring(settings)
    except SigningError as err:
        raise ActuationConfigError(f"--node-agent signs its commands: {err}") from err
    transport = KafkaCommandTransport(
        opts.broker, signer, keyring, opts.topic_prefix, kafka=kafka_options(opts.broker, settings)
    )
    wired.closers.append(transport.close)
    return _add(wired, NodeAgentActuator(transport))


def _kubernetes(opts: ActuatorOptions, wired: Wired) -> GpuCapacity:
    from kubernetes import config
    from kubernetes.client import CoreV1Api

    from actuators.kubernetes import KubernetesActuator, connect
    from actuators.validation import KubernetesCapacity

    if opts.kubeconfig is not None:
        api = config.new_client_from_config(config_file=str(opts.kubeconfig))  # type: ignore[no-untyped-call]
    else:
        api = connect(opts.kube_url)
    _add(wired, KubernetesActuator(api))
    return KubernetesCapacity(CoreV1Api(api))


def _slurm(opts: ActuatorOptions, wired: Wired) -> GpuCapacity | None:
    from actuators.slurm import SlurmActuator, SlurmClient, SlurmNodeFacts
    from actuators.validation import SlurmCapacity

    env = {"SLURM_CONF": str(opts.slurm_conf)} if opts.slurm_conf else {}
    client = SlurmClient(SubprocessRunner(env))
    client.active_jobs("-")  # reach the controller now: a wrong config fails at start-up, not mid-repair
    _add(wired, SlurmActuator(client))
    wired.facts = SlurmNodeFacts(client)
    if opts.slurm_gpus is None:
        wired.notes.append("slurm: no --slurm-gpus, so validation skips the allocatable-GPU check")
        return None
    expected = opts.slurm_gpus
    return SlurmCapacity(client, lambda node: expected)


def _symptoms(opts: ActuatorOptions, wired: Wired, strict: bool) -> Symptoms | None:
    if not (opts.symptoms and opts.broker):
        wired.notes.append("no symptom feed: playbooks asking for a quiet window fail validation")
        return None
    broker = opts.broker

    def build() -> Symptoms:
        from breakfix.actuation.symptoms import KafkaSymptoms

        feed = KafkaSymptoms(broker, opts.topic_prefix + Topic.EVENTS)
        wired.closers.append(feed.close)
        return feed

    return _optional(wired, strict, "validate (symptom feed)", build)


def _add(wired: Wired, actuator: Actuator | None) -> Actuator | None:
    if actuator is not None:
        wired.actuators.append(actuator)
    return actuator
