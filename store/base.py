"""The store interface every stage writes through, and the two errors that drive the sink.

A store is "ClickHouse reached somehow": the sink, the offline replay writer and the CLI only need
to run DDL, insert column batches (optionally with a deduplication token) and read rows back. Both
engines implement it with clickhouse-connect, so SQL and types are identical across them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class StoreError(Exception):
    """ClickHouse refused the statement (bad SQL, type mismatch): retrying unchanged will not help."""


class StoreUnavailable(StoreError):
    """ClickHouse could not be reached or timed out: transient, so the sink spools and retries."""


@dataclass(frozen=True)
class Rows:
    """A query result: column names and row tuples, small enough to print or serialise."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


@runtime_checkable
class Store(Protocol):
    """ClickHouse behind one interface. ``database`` qualifies every table the product owns."""

    database: str
    kind: str
    """``chdb`` or ``server``: shown by the CLI so users know which engine answered."""

    def command(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """Run DDL or a statement without a result set."""
        ...

    def query(
        self, sql: str, params: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Rows:
        """Run a SELECT; ``{name:Type}`` placeholders are bound server-side from ``params``;
        ``settings`` go with the request as the client's own (the statement text cannot change them
        once they include ``readonly = 1``)."""
        ...

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        dedup_token: str | None = None,
    ) -> int:
        """Insert rows into ``database.table``. The same token twice is written once. Returns rows."""
        ...

    def insert_arrow(self, table: str, data: Any, *, dedup_token: str | None = None) -> int:
        """Insert a ``pyarrow.Table`` whose columns name the table's. Returns rows.

        The sink's telemetry path: the raw records go into a staging table whose materialized
        views check and map them, so the token also deduplicates every view's target."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...
