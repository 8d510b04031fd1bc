"""``breakfix run --role api`` (also ``breakfix serve``): the operator HTTP API (see breakfix/api/)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from breakfix.cli.common import fail
from breakfix.cli.role_common import PRINT_OPT, SETTINGS_OPT, settle
from breakfix.roles.settings import ApiSettings


def serve(
    host: str | None = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="TCP port (default 8080)."),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Audit store DSN: chdb:///path or http://host:8123 (BREAKFIX_STORE_DSN; default: chdb).",
    ),
    broker: str | None = typer.Option(None, "--broker", help="Kafka bootstrap servers (BREAKFIX_BROKER)."),
    tokens: Path | None = typer.Option(
        None,
        "--tokens",
        help="YAML/JSON file: token -> {actor, role} (else BREAKFIX_API_TOKENS_FILE or BREAKFIX_API_TOKENS).",
    ),
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        help="Plans, approvals, workflow and machine records, tickets (default .breakfix/api).",
    ),
    policy: Path | None = typer.Option(None, "--policy", help="Policy file (default: the shipped policy)."),
    kube_url: str | None = typer.Option(None, "--kube-url", hidden=True, help="Moved to the actuator stage."),
    kube: bool | None = typer.Option(
        None, "--kube/--no-kube", hidden=True, help="Moved to the actuator stage."
    ),
    actuator: list[str] | None = typer.Option(
        None, "--actuator", hidden=True, help="Moved to the actuator stage."
    ),
    approval_ttl: int | None = typer.Option(
        None, "--approval-ttl", min=1, help="Minutes an approval (plan token, decision approval) stays valid."
    ),
    simulate: bool | None = typer.Option(
        None, "--simulate/--no-simulate", hidden=True, help="Moved to the actuator stage."
    ),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="PEM certificate (chain): serve HTTPS instead of HTTP (with --tls-key)."
    ),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
    max_body_kib: int | None = typer.Option(
        None, "--max-body-kib", min=1, help="Largest request body accepted (413 before auth or parsing)."
    ),
    sql_store: str | None = typer.Option(
        None,
        "--sql-store",
        help="Store DSN for ad-hoc SQL, e.g. a read-only ClickHouse user (default: a session of --store).",
    ),
    migrate: bool | None = typer.Option(
        None, "--migrate/--no-migrate", help="Create/upgrade the store's tables first (needs DDL rights)."
    ),
    settings_file: Path | None = SETTINGS_OPT,
    print_settings: bool = PRINT_OPT,
) -> None:
    """Serve the operator HTTP API (OpenAPI at /openapi.json, Prometheus metrics at /metrics).

    Example: breakfix run --role api --host 127.0.0.1 --port 8080 --store chdb:///var/lib/breakfix/chdb
    --broker kafka-1:9092 --tokens /etc/breakfix/tokens.yaml

    Example (HTTPS): breakfix serve --host 0.0.0.0 --port 8443 --tls-cert /etc/breakfix/api.pem
    --tls-key /etc/breakfix/api-key.pem --tokens /etc/breakfix/tokens.yaml

    Tokens file example (YAML): "<43 random characters>": {actor: alice, role: approver}; serve
    refuses example and short tokens (make each with python -c 'import secrets;
    print(secrets.token_urlsafe(32))').
    """
    from breakfix.api.serve import ACTUATORS_MOVED, ServeOptions
    from breakfix.api.serve import serve as run_server
    from breakfix.api.tokens import TokenError

    if kube_url or kube is not None or actuator or simulate is not None:
        typer.echo(f"note: {ACTUATORS_MOVED}; these options are ignored here", err=True)
    s = settle(
        ApiSettings,
        settings_file,
        print_settings,
        host=host,
        port=port,
        store_dsn=store,
        broker=broker,
        api_tokens_file=tokens,
        state_dir=state_dir,
        policy_file=policy,
        approval_ttl_min=approval_ttl,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_body_kib=max_body_kib,
        sql_store_dsn=sql_store,
        migrate=migrate,
    )
    opts = ServeOptions(
        host=s.host,
        port=s.port,
        store=s.store_dsn.get_secret_value() if s.store_dsn else None,
        broker=s.broker,
        tokens=s.api_tokens_file,
        state_dir=s.state_dir,
        policy=s.policy_file,
        approval_ttl=timedelta(minutes=s.approval_ttl_min),
        tls_cert=s.tls_cert,
        tls_key=s.tls_key,
        max_body_bytes=s.max_body_kib * 1024,
        sql_store=s.sql_store_dsn.get_secret_value() if s.sql_store_dsn else None,
        migrate=s.migrate,
    )
    try:
        run_server(opts)
    except TokenError as err:
        fail(
            str(err),
            "write a tokens file of lines '<token>': {actor: <name>, role: <role>} with role one of "
            "viewer, operator, approver, agent, repair-tenant, admin",
        )
    except (ConnectionError, OSError, ValueError) as err:
        fail(f"could not start the API: {err}", "check --broker, --store and --tls-cert/--tls-key")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
