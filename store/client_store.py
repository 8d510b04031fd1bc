"""The :class:`~store.base.Store` implementation shared by both engines.

clickhouse-connect drives both a ClickHouse server (HTTP) and chdb (its in-process backend) through
the same client API, so the only engine-specific code is how the client is built; everything here,
including how errors are classified for the sink, is common.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from store.base import Rows, StoreError, StoreUnavailable


def _classify(err: Exception) -> StoreError:
    """Connection trouble is transient (spool and retry); a refused statement is permanent."""
    if isinstance(err, (OperationalError, OSError)):
        return StoreUnavailable(str(err))
    return StoreError(str(err))


_INSERT: dict[str, int | str] = {"throw_on_max_partitions_per_insert_block": 0}
"""Every insert: a batch whose rows span more months than ``max_partitions_per_insert_block`` (100)
is written, one part per month, with a warning in the server log. Refused, it was refused the same way
on every retry, and the sink's spool stopped behind it for good."""


def _dedup(token: str | None) -> dict[str, int | str]:
    """Insert settings: :data:`_INSERT`, and with a token those that make a retried batch (same token)
    a no-op, views included."""
    if not token:
        return dict(_INSERT)
    return {
        **_INSERT,
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }


class ClientStore:
    """A Store over any clickhouse-connect client; ``connect`` makes another client to the same engine
    (for :meth:`session`). ``hold``/``release``: an embedded engine's owner guard (store.owner),
    ``release`` dropped on close and ``hold`` taken again by each session."""

    def __init__(
        self,
        client: Client,
        database: str,
        kind: str,
        connect: Callable[[], Client] | None = None,
        hold: Callable[[], Callable[[], None]] | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.database = database
        self.kind = kind
        self._connect = connect
        self._hold = hold
        self._release = release

    def session(self) -> ClientStore:
        """Another connection to the same engine with ``database`` current, for work that must not
        queue behind this one's (one heavy analyst query must not hold up audit writes: each
        connection is used by one thread at a time, and separate ones run side by side, chdb's
        included)."""
        if self._connect is None:
            raise ValueError(f"this {self.kind} store cannot open another connection")
        release = self._hold() if self._hold is not None else None
        client = self._connect()
        client.database = self.database
        return ClientStore(client, self.database, self.kind, self._connect, self._hold, release)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.client.command(sql, parameters=params)
        except (DatabaseError, OperationalError, OSError) as err:
            raise _classify(err) from err

    def query(
        self, sql: str, params: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Rows:
        try:
            result = self.client.query(sql, parameters=params, settings=settings)
        except (DatabaseError, OperationalError, OSError) as err:
            raise _classify(err) from err
        return Rows(tuple(result.column_names), [tuple(r) for r in result.result_rows])

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        dedup_token: str | None = None,
    ) -> int:
        if not rows:
            return 0
        try:
            self.client.insert(
                table, rows, column_names=list(columns), database=self.database, settings=_dedup(dedup_token)
            )
        except (DatabaseError, OperationalError, OSError) as err:
            raise _classify(err) from err
        return len(rows)

    def insert_arrow(self, table: str, data: Any, *, dedup_token: str | None = None) -> int:
        if not data.num_rows:
            return 0
        try:
            self.client.insert_arrow(table, data, database=self.database, settings=_dedup(dedup_token))
        except (DatabaseError, OperationalError, OSError) as err:
            raise _classify(err) from err
        return int(data.num_rows)

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def close(self) -> None:
        self.client.close()
        if self._release is not None:
            self._release()
            self._release = None
