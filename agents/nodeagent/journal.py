"""The node agent's request journal: what it started and what it answered, on disk, across reboots.

Why on disk: the agent reboots its own node. A reboot request that is redelivered after the node came
back (the offset commit did not make it before the machine went down) must not reboot again, so the
agent writes "started, on boot <id>" before it acts and the final result after. A redelivered request
then finds either its result (answered again, nothing run) or a start without a result: on another
boot, the reboot happened; on the same boot, the agent died mid-action and does not guess (see
:meth:`agents.nodeagent.agent.NodeAgent.handle`).

One SQLite file (:mod:`streams.journal_db`, synchronous=FULL): the start record is on disk before the
action runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from streams.journal_db import open_journal

_KEEP_S = 7 * 86_400.0
"""Entries older than this are pruned: a request that old is refused by its age anyway."""


@dataclass(frozen=True)
class Entry:
    boot_id: str
    result: str | None
    """The answer as JSON once final; None while started."""


class RequestJournal:
    def __init__(self, path: Path | None) -> None:
        self._db, self._lock = open_journal(
            path,
            ["CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, at REAL, boot TEXT, result TEXT)"],
        )
        with self._lock, self._db:
            self._db.execute("DELETE FROM requests WHERE at < ?", (time.time() - _KEEP_S,))

    def get(self, request_id: str) -> Entry | None:
        with self._lock:
            row = self._db.execute("SELECT boot, result FROM requests WHERE id = ?", (request_id,)).fetchone()
        return None if row is None else Entry(str(row[0]), row[1])

    def start(self, request_id: str, boot_id: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO requests (id, at, boot, result) VALUES (?, ?, ?, NULL)",
                (request_id, time.time(), boot_id),
            )

    def finish(self, request_id: str, boot_id: str, result: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO requests (id, at, boot, result) VALUES (?, ?, ?, ?)",
                (request_id, time.time(), boot_id, result),
            )

    def forget(self, request_id: str) -> None:
        """A transient outcome (timeout): a retry of the same request may run it again."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM requests WHERE id = ?", (request_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
