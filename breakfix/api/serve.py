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

from breakfix.actuation import ActuatorOptions, Wired, build_actuators
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


def _actuators(opts: ServeOptions, parts: Parts) -> Wired:
    """The actuators the stage's shared wiring builds for this server (the API's machine and ticket
    parts included); kinds that could not be built are notes, not a refusal to serve."""
    return build_actuators(
        ActuatorOptions(
            broker=opts.broker, node_agent=True, kube=opts.kube, kube_url=opts.kube_url if opts.kube else None
        ),
        health=parts.health,
        tickets=parts.tickets,
        strict=False,
    )


def serve(opts: ServeOptions) -> None:
    tokens = load_tokens(opts.tokens)
    policy = load_policy(opts.policy)
    store = open_store(opts.store)
    migrate(store)
    publisher = KafkaPublisher(opts.broker)
    parts = make_parts(opts.state_dir, policy)
    wired = _actuators(opts, parts)
    for note in wired.notes:
        log.warning(note)
    ctx = build_context(
        store,
        publisher,
        tokens,
        parts,
        wired.actuators,
        policy=policy,
        approval_ttl=opts.approval_ttl,
        broker=opts.broker,
    )
    try:
        uvicorn.run(create_app(ctx), host=opts.host, port=opts.port, log_level="info")
    finally:
        ctx.runner.wait(30)
        wired.close()
        publisher.close()
        parts.close()
        store.close()
