"""Run the API for real: open the store, connect to Kafka with the API's signing key, and serve
with uvicorn until interrupted. ``breakfix serve`` is the command-line face.

No actuator runs in the API: an approved plan's steps go to the guard, signed, and the actuator stage
(``breakfix run --role actuators``) runs what the guard decides (:data:`ACTUATORS_MOVED` says so to
whoever still passes an actuator option to ``breakfix serve``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import uvicorn

from breakfix.api.app import MAX_BODY_BYTES, create_app
from breakfix.api.publisher import KafkaPublisher
from breakfix.api.tokens import GENERATE, TokenError, load_tokens
from breakfix.api.wiring import build_context, make_parts
from policy.model import load_policy
from store.dsn import default_dsn, open_store, password_weakness
from store.migrate import migrate
from streams.keys import load_signer
from streams.settings import StreamSettings

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
    approval_ttl: timedelta
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    sql_store: str | None = None
    """Where ad-hoc SQL runs (a read-only ClickHouse user); None: a session of ``store``."""
    migrate: bool = True


ACTUATORS_MOVED = (
    "actuators no longer run in the API: an approved plan's steps go to the guard, signed, and the "
    "actuator stage runs what it decides; give the actuator options to `breakfix run --role actuators` "
    "(--kube-url/--kubeconfig, --actuator KIND=FILE, or --simulate for a simulated fleet)"
)
"""Said to whoever passes ``breakfix serve`` an option that used to register an actuator here."""


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
    ctx = build_context(
        store,
        publisher,
        tokens,
        parts,
        policy=policy,
        approval_ttl=opts.approval_ttl,
        broker=opts.broker,
        sql_store=sql_store,
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
        ctx.workflows.stop()
        publisher.close()
        parts.close()
        store.close()
        if sql_store is not None:
            sql_store.close()
