"""Embedded ClickHouse (chdb) on a local directory: the default for the demo, tests and replay.

chdb hosts one engine per process and one process per data directory (a second opener fails on a
lock), so a process opens one path; several stores on the same path share the engine.
"""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect

from streams.store.client_store import ClientStore


def open_chdb(path: str | Path, database: str = "breakfix") -> ClientStore:
    """Open (creating if needed) the chdb engine at ``path`` through clickhouse-connect."""
    p = Path(path).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    dsn = f"chdb:///{p}"
    return ClientStore(clickhouse_connect.get_client(dsn=dsn), database, "chdb",
                       lambda: clickhouse_connect.get_client(dsn=dsn))  # fmt: skip
