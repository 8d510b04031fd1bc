"""``breakfix run --role metrics`` (and ``breakfix metrics --port P``): serve the fleet figures to
Prometheus until interrupted.

Without ``--port`` the same command prints the saved analytics (breakfix/cli/db_cmd.py); with it,
this module keeps an exporter running whose gauges are computed from the store at scrape time.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from breakfix.cli.common import console, fail
from breakfix.cli.role_common import PRINT_OPT, SETTINGS_OPT, settle
from breakfix.metrics import serve_fleet
from breakfix.roles.settings import MetricsSettings
from store.base import Store


def serve_metrics(store: Store, port: int, addr: str, window_s: float | None) -> None:
    """Block serving ``/metrics`` on ``addr:port`` until SIGINT or SIGTERM, then stop cleanly."""
    try:
        server = serve_fleet(store, port, addr, window_s)
    except OSError as err:
        fail(f"cannot listen on {addr}:{port}: {err}", "pick a free --port")
    stop = threading.Event()

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print(f"serving fleet metrics on http://{addr}:{server.server_port}/metrics ({store.kind} store)")
    stop.wait()
    server.shutdown()
    server.server_close()


def metrics(
    store: str | None = typer.Option(
        None, "--store", help="Audit store DSN (BREAKFIX_STORE_DSN; a read-only user is enough)."
    ),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="Port of /metrics (default 9400)."
    ),
    addr: str | None = typer.Option(
        None, "--addr", help="Address (default 127.0.0.1; 0.0.0.0 in a container)."
    ),
    since: str | None = typer.Option(None, "--since", help="Sliding window of the figures, e.g. 30d."),
    settings_file: Path | None = SETTINGS_OPT,
    print_settings: bool = PRINT_OPT,
) -> None:
    """Serve the fleet figures (MTTR, false positives, nodes by state...) to Prometheus, computed from
    the audit store at scrape time, until interrupted. (`breakfix metrics` without --port prints them.)

    Example: BREAKFIX_STORE_DSN=http://viewer:PASSWORD@clickhouse:8123 breakfix run --role metrics
    --addr 0.0.0.0 --since 30d
    """
    from breakfix.cli.db_cmd import _open, parse_duration

    s = settle(
        MetricsSettings, settings_file, print_settings, store_dsn=store, port=port, addr=addr, since=since
    )
    try:
        window = parse_duration(s.since) if s.since else None
    except typer.BadParameter as err:
        fail(f"BREAKFIX_SINCE: {err.message}", "give a duration such as 7d or 12h")
    serve_metrics(_open(s.store_dsn.get_secret_value() if s.store_dsn else None), s.port, s.addr, window)
