"""``breakfix db migrate``, ``breakfix sql`` and ``breakfix metrics``: the analyst's side of the
audit store. The store is named by ``--store`` or ``$BREAKFIX_STORE_DSN`` (default: embedded chdb under
``.breakfix/chdb``); see store/dsn.py.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.table import Table

from breakfix.cli.common import console, fail, print_json, store_errors
from breakfix.cli.ops_common import SERVER_OPT, TOKEN_OPT, call
from store.base import Rows, Store, StoreError, StoreUnavailable
from store.dsn import open_store
from store.migrate import Retention, migrate, set_retention
from store.owner import StoreInUse
from store.queries import BY_NAME, EPOCH, SAVED, run_saved

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
STORE_HELP = "Store DSN: chdb:///path or http://host:8123/?database=breakfix (default: $BREAKFIX_STORE_DSN)."


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` → seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration like 30m, 24h or 7d")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_since(text: str | None, now: datetime | None = None) -> datetime:
    """A duration back from now (``7d``) or an RFC 3339 time; nothing means "since the beginning"."""
    if not text:
        return EPOCH
    if _DURATION.match(text.strip()):
        return (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(text))
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a duration (7d) nor an RFC 3339 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _open(dsn: str | None) -> Store:
    try:
        return open_store(dsn)
    except StoreInUse as err:
        fail(str(err), err.hint)
    except (ValueError, StoreError) as err:
        fail(str(err), "pass --store chdb:///path/to/dir or --store http://host:8123")
    except Exception as err:  # an unreachable server, a chdb engine another program holds
        fail(f"cannot open the store: {err}", "check --store (chdb allows one process per directory)")


def _cell(v: Any) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return "" if v is None else str(v)


def _jsonable(rows: Rows) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
        for d in rows.dicts()
    ]


def _print_rows(rows: Rows, title: str = "") -> None:
    table = Table(title=title or None, title_justify="left")
    for c in rows.columns:
        table.add_column(c)
    for r in rows.rows:
        table.add_row(*(_cell(v) for v in r))
    console.print(table)
    if not rows.rows:
        console.print("[dim](no rows)[/]")


def db_migrate(
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    telemetry_ttl_days: int | None = typer.Option(
        None, help="Keep events, evidence and dead letters this many days after ingestion (0: forever)."
    ),
    audit_ttl_days: int | None = typer.Option(
        None, help="Keep decisions, actions, audit and history this many days (0: forever, the default)."
    ),
) -> None:
    """Create or upgrade the audit store's tables (idempotent; safe to run at every start).

    Example: breakfix db migrate --store chdb:///var/lib/breakfix/chdb --telemetry-ttl-days 30
    """
    s = _open(store)
    base = Retention()
    ret = Retention(
        base.telemetry_days if telemetry_ttl_days is None else telemetry_ttl_days,
        base.audit_days if audit_ttl_days is None else audit_ttl_days,
    )
    try:
        applied = migrate(s, ret)
        if telemetry_ttl_days is not None or audit_ttl_days is not None:
            set_retention(s, ret)
    except StoreError as err:
        fail(f"migration failed: {err}")
    finally:
        s.close()
    if applied:
        for m in applied:
            console.print(f"applied {m.version:03d}_{m.name}")
    else:
        console.print(f"database {s.database} is up to date")


def sql(
    query: str = typer.Argument(..., help="One SQL statement; tables live in the 'breakfix' database."),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    api: bool = typer.Option(
        False, "--api", help="Ask the HTTP API (one read-only SELECT, your token's role and audit record)."
    ),
    server: str | None = SERVER_OPT,
    token: str | None = TOKEN_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print rows as a JSON list of objects."),
) -> None:
    """Run SQL against the audit store (you need its credentials) or, with --api, through the API.

    Example: breakfix sql "SELECT to_state, count() FROM breakfix.decisions FINAL GROUP BY to_state"
    Example: breakfix sql --api "SELECT actor, count() FROM audit GROUP BY actor" --token "$TOKEN"
    """
    if api:
        got = call(server, token, lambda c: c.sql(query))
        rows = Rows(tuple(got["columns"]), [tuple(r) for r in got["rows"]])
        if as_json:
            print_json(_jsonable(rows))
        else:
            _print_rows(rows)
        return
    s = _open(store)
    try:
        rows = s.query(query)
    except StoreUnavailable as err:
        fail(f"the store is unreachable: {err}", "check --store / $BREAKFIX_STORE_DSN")
    except StoreError as err:
        fail(f"query failed: {err}")
    finally:
        s.close()
    if as_json:
        print_json(_jsonable(rows))
    else:
        _print_rows(rows)


def metrics(
    since: str | None = typer.Option(None, help="Window start: a duration back from now (7d) or a time."),
    window: str = typer.Option("7d", help="Recurrence/validation window for false positives and precision."),
    bucket: str = typer.Option("1h", help="Bucket size for the over-time series."),
    min_quarantines: int = typer.Option(2, help="Quarantines that make a repeat offender."),
    only: list[str] = typer.Option([], "--only", help=f"Run only these: {', '.join(BY_NAME)}."),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print {query name: rows} as JSON."),
    port: int | None = typer.Option(None, "--port", help="Serve them to Prometheus on this port instead."),
    addr: str = typer.Option("127.0.0.1", "--addr", help="Address for --port (0.0.0.0 in a container)."),
) -> None:
    """Print the saved analytics: automation success, manual overrides, false positives, MTTR, nodes
    by state, capacity removed, repeat offenders, shadow precision. With --port, serve them as
    Prometheus gauges computed at scrape time (--since then takes a sliding duration such as 7d).

    Example: breakfix metrics --since 7d --window 3d --only mttr --only repeat_offenders
    Example: breakfix metrics --store http://clickhouse:8123 --port 9400 --addr 0.0.0.0
    """
    unknown = [n for n in only if n not in BY_NAME]
    if unknown:
        fail(f"unknown saved query {unknown[0]!r}", f"choose from: {', '.join(BY_NAME)}")
    if port is not None:
        from breakfix.cli.metrics_cmd import serve_metrics  # imports the models: only when serving

        serve_metrics(_open(store), port, addr, parse_duration(since) if since else None)
        return
    params = {
        "since": parse_since(since),
        "window_s": int(parse_duration(window)),
        "bucket_s": max(1, int(parse_duration(bucket))),
        "min_quarantines": min_quarantines,
    }
    s = _open(store)
    out: dict[str, Any] = {}
    with store_errors(s):
        for q in SAVED:
            if only and q.name not in only:
                continue
            rows = run_saved(s, q.name, **params)
            if as_json:
                out[q.name] = _jsonable(rows)
            else:
                _print_rows(rows, f"[bold]{q.name}[/]: {q.title}")
    if as_json:
        print_json(out)


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The ClickHouse audit store.", no_args_is_help=True)
    db.command("migrate")(db_migrate)
    app.add_typer(db, name="db")
    app.command("sql")(sql)
    app.command("metrics")(metrics)
