"""Write contract models straight into the store: how ``breakfix replay --offline`` makes a policy
replay analysable with the same SQL as production.

Rows go through the same mapping as the sink (:mod:`store.rows`) and the same idempotent
insert (a token per chunk plus ReplacingMergeTree on id), so writing one replay twice counts once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel

from schemas.deadletter import DeadLetter
from schemas.decision import Decision
from schemas.events import Envelope
from schemas.evidence import Evidence
from store.base import Store
from store.rows import COLUMNS, Row, model_rows


def batch_token(table: str, rows: Sequence[Row]) -> str:
    """Deterministic in the rows' ids, so a retried (identical) batch is recognised and skipped."""
    return ids_token(table, [str(r[0]) for r in rows])


def ids_token(table: str, ids: Sequence[str]) -> str:
    """:func:`batch_token` from the ids alone (the sink's JSON path has no row tuples)."""
    h = hashlib.sha256(table.encode())
    h.update(b"".join(b"\0" + i.encode() for i in ids))
    return f"{table}-{len(ids)}-{h.hexdigest()[:32]}"


class TableBatcher:
    """Accumulates rows per table and inserts a table's rows whenever ``chunk_rows`` are waiting."""

    def __init__(self, store: Store, chunk_rows: int = 50_000) -> None:
        self.store = store
        self.chunk_rows = chunk_rows
        self.pending: dict[str, list[Row]] = {}
        self.written: dict[str, int] = {}

    def add(self, table: str, row: Row) -> None:
        rows = self.pending.setdefault(table, [])
        rows.append(row)
        if len(rows) >= self.chunk_rows:
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows = self.pending.pop(table, [])
        if rows:
            self.store.insert(table, COLUMNS[table], rows, dedup_token=batch_token(table, rows))
            self.written[table] = self.written.get(table, 0) + len(rows)

    def flush(self) -> dict[str, int]:
        for table in list(self.pending):
            self._flush(table)
        return dict(self.written)


def write_outputs(
    store: Store,
    *,
    events: Iterable[Envelope] = (),
    decisions: Iterable[Decision] = (),
    evidence: Iterable[Evidence] = (),
    dead_letters: Iterable[DeadLetter] = (),
    others: Iterable[BaseModel] = (),
    received: datetime | None = None,
    chunk_rows: int = 50_000,
) -> dict[str, int]:
    """Insert a run's outputs; returns rows written per table. ``others`` takes any other contract
    model (proposals, action requests, audit records, control messages). ``received`` stamps dead
    letters, which carry no time of their own (default: now)."""
    stamp = received or datetime.now(UTC)
    batcher = TableBatcher(store, chunk_rows)
    for stream in (events, decisions, evidence, dead_letters, others):
        for obj in stream:
            for table, row in model_rows(obj, stamp):
                batcher.add(table, row)
    return batcher.flush()
