"""The workflow journal: what each run and step did, in sqlite, so a crashed engine resumes.

A step is journaled ``started`` before the actuator is called and ``succeeded`` (or its failure)
after its result event was emitted. On resume a ``succeeded`` step is skipped — a completed mutating
step is never repeated — and a step left ``started`` runs again, which is safe because actuators are
idempotent on ``decision id + step``. Runs also feed the per-node retry budget.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  decision_id TEXT PRIMARY KEY, node TEXT NOT NULL, playbook TEXT NOT NULL, version TEXT NOT NULL,
  status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', started REAL NOT NULL, finished REAL
);
CREATE INDEX IF NOT EXISTS runs_node ON runs (node, started);
CREATE TABLE IF NOT EXISTS steps (
  decision_id TEXT NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL, status TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '', outputs TEXT NOT NULL DEFAULT '{}', attempts INTEGER NOT NULL,
  updated REAL NOT NULL, PRIMARY KEY (decision_id, step)
);
"""

# Run statuses that end a run for good; "running" and "paused" (kill switch, exclusion) resume.
TERMINAL = frozenset({"succeeded", "escalated", "rejected"})


@dataclass(frozen=True)
class RunRecord:
    decision_id: str
    node: str
    playbook: str
    version: str
    status: str
    detail: str


@dataclass(frozen=True)
class StepRecord:
    step: str
    phase: str
    status: str
    detail: str
    outputs: dict[str, Any]
    attempts: int


class Journal:
    """One sqlite file (``:memory:`` for tests that do not crash); every write commits at once."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def run(self, decision_id: str) -> RunRecord | None:
        row = self._db.execute(
            "SELECT decision_id, node, playbook, version, status, detail FROM runs WHERE decision_id=?",
            (decision_id,),
        ).fetchone()
        return RunRecord(*row) if row else None

    def start_run(self, decision_id: str, node: str, playbook: str, version: str, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (decision_id, node, playbook, version, status, started) "
                "VALUES (?, ?, ?, ?, 'running', ?) "
                "ON CONFLICT (decision_id) DO UPDATE SET status='running'",
                (decision_id, node, playbook, version, now),
            )

    def finish_run(self, decision_id: str, status: str, detail: str, now: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE runs SET status=?, detail=?, finished=? WHERE decision_id=?",
                (status, detail, now if status in TERMINAL else None, decision_id),
            )

    def steps(self, decision_id: str) -> dict[str, StepRecord]:
        rows = self._db.execute(
            "SELECT step, phase, status, detail, outputs, attempts FROM steps WHERE decision_id=?",
            (decision_id,),
        ).fetchall()
        return {r[0]: StepRecord(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows}

    def mark_step(
        self,
        decision_id: str,
        step: str,
        phase: str,
        status: str,
        now: float,
        detail: str = "",
        outputs: dict[str, Any] | None = None,
    ) -> None:
        """Upsert a step's status; ``attempts`` counts how often it was started."""
        started = 1 if status == "started" else 0
        with self._lock:
            self._db.execute(
                "INSERT INTO steps (decision_id, step, phase, status, detail, outputs, attempts, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (decision_id, step) DO UPDATE SET "
                "status=excluded.status, detail=excluded.detail, outputs=excluded.outputs, "
                "attempts=steps.attempts + excluded.attempts, updated=excluded.updated",
                (decision_id, step, phase, status, detail, json.dumps(outputs or {}), started, now),
            )

    def failed_runs(self, node: str, since: float) -> int:
        """Runs on ``node`` that ended escalated since ``since``: the retry budget's count."""
        row = self._db.execute(
            "SELECT count(*) FROM runs WHERE node=? AND status='escalated' AND started>=?", (node, since)
        ).fetchone()
        return int(row[0])
