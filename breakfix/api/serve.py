"""Run the API for real: open the store, connect to Kafka, register the actuators this host can
reach, and serve with uvicorn until interrupted. ``breakfix serve`` is the command-line face.

Actuators: health overrides and tickets always (local state directory); the node agent over Kafka
when the command topics exist; Kubernetes when ``kube_url`` is given or a kubeconfig / in-cluster
account is found. A playbook needing an actuator that is not registered is rejected by the engine
before any step runs ("no actuator registered for ..."), never half-executed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import uvicorn

from actuators.base import Actuator
from actuators.tickets import TicketActuator
from breakfix.api.app import create_app
from breakfix.api.publisher import KafkaPublisher
from breakfix.api.tokens import load_tokens
from breakfix.api.wiring import Parts, build_context, make_parts
from policy.model import load_policy
from streams.store.dsn import open_store
from streams.store.migrate import migrate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    store: str | None
    broker: str
    tokens: Path | None
    state_dir: Path
    policy: Path | None
    kube_url: str | None
    kube: bool
    approval_ttl: timedelta


def _actuators(opts: ServeOptions, parts: Parts) -> tuple[list[Actuator], list[str]]:
    """The actuators to register, and a note for each kind left out (shown at start-up)."""
    from actuators.validation import Validator

    acts: list[Actuator] = [parts.health, TicketActuator(parts.tickets)]
    notes: list[str] = []
    agent: Actuator | None = None
    try:
        from actuators.nodeagent.actuator import NodeAgentActuator
        from actuators.nodeagent.kafka_transport import KafkaCommandTransport

        agent = NodeAgentActuator(KafkaCommandTransport(opts.broker))
        acts.append(agent)
    except (RuntimeError, OSError) as err:
        notes.append(f"node agent actuator not registered: {err}")
    capacity = None
    if opts.kube:
        try:
            from kubernetes.client import CoreV1Api

            from actuators.kubernetes import KubernetesActuator, connect
            from actuators.validation import KubernetesCapacity

            api = connect(opts.kube_url)
            acts.append(KubernetesActuator(api))
            capacity = KubernetesCapacity(CoreV1Api(api))
        except Exception as err:  # no kubeconfig here: serve without it, say so
            notes.append(f"kubernetes actuator not registered: {err}")
    acts.append(Validator(agent=agent, capacity=capacity))
    return acts, notes


def serve(opts: ServeOptions) -> None:
    tokens = load_tokens(opts.tokens)
    policy = load_policy(opts.policy)
    store = open_store(opts.store)
    migrate(store)
    publisher = KafkaPublisher(opts.broker)
    parts = make_parts(opts.state_dir, policy)
    actuators, notes = _actuators(opts, parts)
    for note in notes:
        log.warning(note)
    ctx = build_context(
        store,
        publisher,
        tokens,
        parts,
        actuators,
        policy=policy,
        approval_ttl=opts.approval_ttl,
        broker=opts.broker,
    )
    try:
        uvicorn.run(create_app(ctx), host=opts.host, port=opts.port, log_level="info")
    finally:
        ctx.runner.wait(30)
        publisher.close()
        parts.close()
        store.close()
