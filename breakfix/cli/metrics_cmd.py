"""``breakfix metrics --port P``: serve the fleet figures to Prometheus until interrupted.

Without ``--port`` the same command prints the saved analytics (breakfix/cli/db_cmd.py); with it,
this module keeps an exporter running whose gauges are computed from the store at scrape time.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from breakfix.cli.common import console, fail
from breakfix.metrics import serve_fleet
from streams.store.base import Store


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
