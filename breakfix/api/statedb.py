"""The API's own durable state: repair plans, approval grants (token hashes, used/expiry) and
workflow records, in one sqlite file beside the workflow journal (``<state dir>/api.db``).

Why sqlite and not the ClickHouse store: single use must be a compare-and-set. ``BEGIN IMMEDIATE``
takes sqlite's write lock before the read, so "check the token is unused, mark it used" is atomic
across request threads, across a restart, and across two API processes sharing the file; the
store's ReplacingMergeTree tables are append-and-merge, with no such primitive. Every write is
committed with ``synchronous=FULL`` before the API answers, so a restart loses nothing it said.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
  digest TEXT PRIMARY KEY, plan_id TEXT NOT NULL, content_hash TEXT NOT NULL, approver TEXT NOT NULL,
  expires_at TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS grants_plan ON grants (plan_id);
CREATE TABLE IF NOT EXISTS workflows (id TEXT PRIMARY KEY, status TEXT NOT NULL, body TEXT NOT NULL);
"""


class StateDb:
    """One sqlite connection shared by the request threads (``:memory:`` for unit tests)."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the file's write lock from its first read to its commit;
        an exception rolls it back (nothing half-written) and propagates."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
