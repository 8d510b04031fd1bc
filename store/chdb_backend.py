"""Embedded ClickHouse (chdb) on a local directory: the default for the demo, tests and replay.

chdb hosts one engine per process and one process per data directory, so a process opens one path;
several stores on the same path share the engine. The owner guard (:mod:`store.owner`) is
taken before chdb touches the directory, so a second process is refused with a line naming the
owner instead of failing inside the engine.
"""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect

from store.client_store import ClientStore
from store.owner import claim


def open_chdb(path: str | Path, database: str = "breakfix") -> ClientStore:
    """Open (creating if needed) the chdb engine at ``path`` through clickhouse-connect."""
    p = Path(path).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    dsn = f"chdb:///{p}"
    release = claim(p)  # StoreInUse when another process owns the directory
    try:
        client = clickhouse_connect.get_client(dsn=dsn)
    except BaseException:
        release()
        raise
    return ClientStore(client, database, "chdb", lambda: clickhouse_connect.get_client(dsn=dsn),
                       hold=lambda: claim(p), release=release)  # fmt: skip
