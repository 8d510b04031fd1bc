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
from breakfix.api.app import MAX_BODY_BYTES, create_app
from breakfix.api.publisher import KafkaPublisher
from breakfix.api.tokens import GENERATE, TokenError, load_tokens
from breakfix.api.wiring import Parts, build_context, make_parts
from policy.model import load_policy
from streams.keys import load_signer
from streams.settings import StreamSettings
from streams.store.dsn import default_dsn, open_store, password_weakness
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
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    sql_store: str | None = None
    """Where ad-hoc SQL runs (a read-only ClickHouse user); None: a session of ``store``."""
    migrate: bool = True
    simulate: bool = False
    """Plans act on a simulated fleet (the local stack, ``breakfix up``): no real hardware."""
    plugins: tuple[tuple[str, Path | None], ...] = ()
    """``--actuator KIND[=FILE]``: registered kinds built by their own builder (``actuators.registry``)."""


SERVE_HINTS: dict[str, str] = {
    "kubernetes": "restart `breakfix serve` with --kube-url URL or a kubeconfig (--simulate for a "
    "simulated fleet)",
    "node_agent": "create the breakfix.commands topic (`breakfix topics create`) and run "
    "`breakfix node-agent` on the nodes, then restart `breakfix serve` (--simulate for a simulated fleet)",
    "slurm": "`breakfix serve` has no SLURM actuator: run SLURM playbooks from the actuator stage "
    "(`breakfix run --role actuators --slurm`), or use --simulate for a simulated fleet",
    "validate": "restart `breakfix serve` (validation is always registered) or use --simulate",
    "ticket": "restart `breakfix serve` (tickets are always registered)",
    "health_override": "restart `breakfix serve` (health overrides are always registered)",
}
"""What to add to ``breakfix serve`` for each actuator kind a plan may need."""


def _actuators(opts: ServeOptions, parts: Parts) -> Wired:
    """The actuators the stage's shared wiring builds for this server (the API's machine and ticket
    parts included); kinds that could not be built are notes, not a refusal to serve."""
    if opts.simulate:
        return _simulated(opts, parts)
    return build_actuators(
        ActuatorOptions(
            broker=opts.broker,
            node_agent=True,
            kube=opts.kube,
            kube_url=opts.kube_url if opts.kube else None,
            plugins=opts.plugins,
        ),
        health=parts.health,
        tickets=parts.tickets,
        strict=False,
    )


def _simulated(opts: ServeOptions, parts: Parts) -> Wired:
    """The API's own health overrides and tickets, and a simulated fleet for every step that would
    touch hardware (Kubernetes, SLURM, node agent, validation). Simulated durations run 100x faster,
    and the fleet's ledger lives in the state directory, so a restarted API remembers its actions."""
    import time

    from actuators.simulated import SimulatedActuator, SimulatedFleet

    fleet = SimulatedFleet(
        now=time.time, wait=lambda s: time.sleep(s / 100), ledger=opts.state_dir / "fleet-ledger.jsonl"
    )
    real = build_actuators(ActuatorOptions(symptoms=False), health=parts.health, tickets=parts.tickets)
    kept = [a for a in real.actuators if a.name in ("ticket", "health_override")]
    sim = [SimulatedActuator(k, fleet) for k in ("kubernetes", "slurm", "node_agent", "validate")]
    return Wired(actuators=[*kept, *sim], notes=["plans act on a simulated fleet (--simulate)"])


def serve(opts: ServeOptions) -> None:
    tokens = load_tokens(opts.tokens)
    if tokens.weak:
        raise TokenError(
            "refusing to serve with example or weak tokens: "
            + "; ".join(tokens.weak)
            + f". Generate each token with {GENERATE}"
        )
    for dsn in (opts.store, opts.sql_store):
        why = password_weakness(dsn or default_dsn())
        if why is not None:
            raise ValueError(f"refusing the store DSN: {why}; give each ClickHouse user its own password")
    if (opts.tls_cert is None) != (opts.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
    policy = load_policy(opts.policy)
    store = open_store(opts.store)
    if opts.migrate:
        migrate(store)
    sql_store = open_store(opts.sql_store) if opts.sql_store else None
    publisher = KafkaPublisher(opts.broker, signer=load_signer(StreamSettings(), "api"))
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
        sql_store=sql_store,
        unconfigured={k: SERVE_HINTS.get(k, v) for k, v in wired.unconfigured.items()}
        if not opts.simulate
        else {},
    )
    try:
        uvicorn.run(
            create_app(ctx, max_body_bytes=opts.max_body_bytes),
            host=opts.host,
            port=opts.port,
            log_level="info",
            ssl_certfile=str(opts.tls_cert) if opts.tls_cert else None,
            ssl_keyfile=str(opts.tls_key) if opts.tls_key else None,
        )
    finally:
        ctx.runner.wait(30)
        wired.close()
        publisher.close()
        parts.close()
        store.close()
        if sql_store is not None:
            sql_store.close()
