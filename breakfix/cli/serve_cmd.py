"""``breakfix serve``: the operator HTTP API (see breakfix/api/)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from breakfix.cli.common import fail


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port."),
    store: str | None = typer.Option(
        None, "--store", help="Audit store DSN: chdb:///path or http://host:8123 (default: embedded chdb)."
    ),
    broker: str = typer.Option(
        "127.0.0.1:9092", "--broker", envvar="BREAKFIX_BROKER", help="Kafka bootstrap servers."
    ),
    tokens: Path | None = typer.Option(
        None,
        "--tokens",
        help="YAML/JSON file: token -> {actor, role} (else BREAKFIX_API_TOKENS_FILE or BREAKFIX_API_TOKENS).",
    ),
    state_dir: Path = typer.Option(
        Path(".breakfix/api"), "--state-dir", help="Workflow journal, machine records, built-in tickets."
    ),
    policy: Path | None = typer.Option(None, "--policy", help="Policy file (default: the shipped policy)."),
    kube_url: str | None = typer.Option(
        None, "--kube-url", help="Kubernetes API URL without auth (kubectl proxy); default: kubeconfig."
    ),
    kube: bool = typer.Option(True, "--kube/--no-kube", help="Register the Kubernetes actuator."),
    actuator: list[str] = typer.Option(
        [], "--actuator", help="A registered actuator kind built from its own config file, KIND=FILE."
    ),
    approval_ttl: int = typer.Option(
        30, "--approval-ttl", min=1, help="Minutes an approval (plan token, decision approval) stays valid."
    ),
    simulate: bool = typer.Option(
        False, "--simulate", help="Plans act on a simulated fleet (local stack; never real hardware)."
    ),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="PEM certificate (chain): serve HTTPS instead of HTTP (with --tls-key)."
    ),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
    max_body_kib: int = typer.Option(
        1024, "--max-body-kib", min=1, help="Largest request body accepted (413 before auth or parsing)."
    ),
    sql_store: str | None = typer.Option(
        None,
        "--sql-store",
        help="Store DSN for ad-hoc SQL, e.g. a read-only ClickHouse user (default: a session of --store).",
    ),
    migrate: bool = typer.Option(
        True, "--migrate/--no-migrate", help="Create/upgrade the store's tables first (needs DDL rights)."
    ),
) -> None:
    """Serve the operator HTTP API (OpenAPI at /openapi.json, Prometheus metrics at /metrics).

    Example: breakfix serve --host 127.0.0.1 --port 8080 --store chdb:///var/lib/breakfix/chdb
    --broker kafka-1:9092 --tokens /etc/breakfix/tokens.yaml

    Example (HTTPS): breakfix serve --host 0.0.0.0 --port 8443 --tls-cert /etc/breakfix/api.pem
    --tls-key /etc/breakfix/api-key.pem --tokens /etc/breakfix/tokens.yaml

    Tokens file example (YAML): "<43 random characters>": {actor: alice, role: approver}; serve
    refuses example and short tokens (make each with python -c 'import secrets;
    print(secrets.token_urlsafe(32))').
    """
    from breakfix.actuation import ActuationConfigError, parse_plugin
    from breakfix.api.serve import ServeOptions
    from breakfix.api.serve import serve as run_server
    from breakfix.api.tokens import TokenError

    try:
        plugins = tuple(parse_plugin(spec) for spec in actuator)
    except ActuationConfigError as err:
        fail(str(err), "name a registered actuator kind and, where it needs one, its config file")

    opts = ServeOptions(
        host=host,
        port=port,
        store=store,
        broker=broker,
        tokens=tokens,
        state_dir=state_dir,
        policy=policy,
        kube_url=kube_url,
        kube=kube,
        plugins=plugins,
        approval_ttl=timedelta(minutes=approval_ttl),
        simulate=simulate,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_body_bytes=max_body_kib * 1024,
        sql_store=sql_store,
        migrate=migrate,
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
