"""Which decisions the actuator stage may act on: signed by the guard, current epoch, fresh, never run.

Where it sits: between the decisions topic and the handler. A decision acts only when
(1) its seal verifies against a trusted, unrevoked ``guard`` key (:func:`schemas.signing.verify`, over
the object exactly as received, so no unsigned field is trusted), (2) its guard epoch is not older than
the newest epoch this stage has seen (a guard replaced after a rebalance is fenced off), (3) it was
issued less than ``decision_max_age_s`` ago by the guard's wall clock, and (4) this stage has never
finished it. A decision this stage admitted but did not finish because it crashed is its own
journaled run: redelivered, it resumes without the age bound, and the handler re-checks every lever.
A run a lever paused resumes only under a guard stamp younger than the bound: its own, or the one
the guard puts on its re-issue (``schemas.decision.REISSUED``) when the lever lifts.

The journal is one SQLite file (stdlib, fsync on commit): admitted ids with their issue time and state,
and the newest epoch. Finished ids older than the age bound are pruned: a copy of one would be refused
as expired anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import ValidationError

from schemas.decision import Decision
from schemas.signing import SEAL, Keyring, Refusal, verify
from streams.journal_db import open_journal

ADMITTED, DONE = "admitted", "done"


@dataclass(frozen=True)
class Admission:
    """``decision`` when it may act (``resumed`` when it continues this stage's own journaled run);
    otherwise ``reason`` and ``detail`` for its dead letter."""

    decision: Decision | None
    reason: str = ""
    detail: str = ""
    resumed: bool = False


class DecisionJournal:
    """Admitted decision ids (persistent) and the newest guard epoch seen."""

    def __init__(self, path: Path | None) -> None:
        self._db, self._lock = open_journal(
            path,
            [
                "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, issued REAL, state TEXT)",
                "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)",
            ],
        )

    def state(self, decision_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM runs WHERE id = ?", (decision_id,)).fetchone()
        return None if row is None else str(row[0])

    def epoch(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k = 'epoch'").fetchone()
        return 0 if row is None else int(row[0])

    def admit(self, decision_id: str, issued: float, epoch: int) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO runs (id, issued, state) VALUES (?, ?, ?)",
                (decision_id, issued, ADMITTED),
            )
            self._db.execute(
                "INSERT INTO meta (k, v) VALUES ('epoch', ?) "
                "ON CONFLICT(k) DO UPDATE SET v = max(v, excluded.v)",
                (epoch,),
            )

    def issued(self, decision_id: str) -> float | None:
        """The newest guard stamp (issue time) that authorised this run."""
        with self._lock:
            row = self._db.execute("SELECT issued FROM runs WHERE id = ?", (decision_id,)).fetchone()
        return None if row is None else float(row[0])

    def restamp(self, decision_id: str, issued: float) -> None:
        """A re-issue of this run with a newer stamp authorises it from then on."""
        with self._lock, self._db:
            self._db.execute("UPDATE runs SET issued = max(issued, ?) WHERE id = ?", (issued, decision_id))

    def finish(self, decision_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE runs SET state = ? WHERE id = ?", (DONE, decision_id))

    def prune(self, before: float) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM runs WHERE state = ? AND issued < ?", (DONE, before))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def admit(raw: bytes, keyring: Keyring, journal: DecisionJournal, now: float, max_age_s: float) -> Admission:
    """The admission verdict for one decisions-topic record (see the module docstring)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Admission(None, "malformed_json", f"not JSON: {err}")
    if not isinstance(doc, dict):
        return Admission(None, "invalid_value", "not a decision object")
    seal = verify(doc, keyring, {"guard"}, now, None)
    if not seal.ok:
        return Admission(None, str(seal.reason), seal.detail)
    try:
        decision = Decision.model_validate({k: v for k, v in doc.items() if k != SEAL})
    except ValidationError as err:
        return Admission(None, "invalid_value", f"not a decision: {str(err).splitlines()[0]}")
    state = journal.state(decision.id)
    if state == DONE:
        return Admission(None, Refusal.REPLAYED, f"decision {decision.id} already ran here")
    if state == ADMITTED:
        return Admission(decision, resumed=True)
    newest = journal.epoch()
    if seal.epoch < newest:
        return Admission(
            None, Refusal.FENCED, f"guard epoch {seal.epoch} is older than {newest}: a replaced guard"
        )
    age = now - seal.issued
    if age > max_age_s:
        return Admission(None, Refusal.EXPIRED, f"signed {age:.0f}s ago (limit {max_age_s:.0f}s)")
    journal.admit(decision.id, seal.issued, seal.epoch)
    return Admission(decision)
