"""A durable local journal: one SQLite file (stdlib) that a process writes before it acts.

The actuator stage's decision journal and the node agent's request journal both promise that what
they record survives a crash or the reboot the process itself performs, so both open the file the same
way: ``synchronous=FULL`` (each commit is on disk before the call returns), WAL so readers do not wait
on the writer, and one lock because the stage's threads share the connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path


def open_journal(path: Path | None, schema: Iterable[str]) -> tuple[sqlite3.Connection, threading.Lock]:
    """The connection and its lock, with ``schema`` (``CREATE TABLE IF NOT EXISTS ...``) applied;
    ``None`` keeps the journal in memory (tests, and processes told to keep no state).

    >>> db, lock = open_journal(None, ["CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY)"])
    >>> with lock, db:
    ...     _ = db.execute("INSERT INTO t VALUES ('a')")
    >>> db.execute("SELECT id FROM t").fetchall()
    [('a',)]
    """
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
    lock = threading.Lock()
    with lock, db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        for statement in schema:
            db.execute(statement)
    return db, lock
