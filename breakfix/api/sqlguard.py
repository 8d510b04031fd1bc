"""Ad-hoc SQL for analysts: ClickHouse's own parser decides what the statement is, never a regex.

Three steps, each done by the engine that will run the query (chdb or the server), with the limits
below sent as the client's own settings:

1. ``formatQuerySingleLine`` parses the text, given as a bound parameter: a syntax error or several
   statements are refused, and what comes back is the statement as ClickHouse understood it, with
   comments gone (``) --`` and ``INTO/**/OUTFILE`` tricks have nothing left to hide in);
2. ``EXPLAIN AST`` of that canonical text gives the parse tree, judged by :func:`judge`: exactly one
   ``SELECT`` (``WITH``, ``UNION``, subqueries and joins allowed), no ``SETTINGS``, ``FORMAT`` or
   ``INTO OUTFILE``, no table function but ``numbers``/``values``, no function that reads a file,
   a URL or another server, and tables only of the product's database;
3. the canonical text runs with ``readonly = 1`` and the limits as client settings, which the text
   cannot change (ClickHouse refuses any ``SETTINGS`` in readonly mode, and step 2 refused it first).

A ClickHouse server adds its own barrier: the ``breakfix_viewer`` user of ``deploy/clickhouse``
(SELECT on the product's database only, a read-only profile with the same limits as constraints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from store.base import Rows, Store, StoreError

TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "values", "zeros", "zeros_mt", "one"})
"""Table functions that only generate rows; every other one (file, url, s3, remote, input, mysql,
executable, merge, ...) reaches outside the product's tables and is refused."""
READERS = frozenset(
    {"file", "url", "s3", "gcs", "hdfs", "input", "remote", "remotesecure", "cluster", "clusterallreplicas",
     "mysql", "postgresql", "mongodb", "redis", "sqlite", "jdbc", "odbc", "executable", "dictionary",
     "merge", "filecluster", "urlcluster", "s3cluster", "hdfscluster", "azureblobstorage"}
)  # fmt: skip
"""Functions refused wherever they appear: ``file('/path')`` is also an ordinary function that reads
a file even in readonly mode, and the table functions' names are refused as functions too."""
READER_PREFIXES = (
    "iceberg",
    "deltalake",
    "hudi",
    "hive",
    "azure",
    "s3",
    "hdfs",
    "remote",
    "paimon",
    "ytsaurus",
    "arrowflight",
    "prometheus",
)
"""Families of table functions (``icebergS3``, ``deltaLakeAzure``, ...) that read other storage."""
ROOT = "SelectWithUnionQuery"
CLIENT_FORMAT = "Native"
"""clickhouse-connect appends ``FORMAT Native`` to a query that names none: the one format allowed."""


class SqlRefused(ValueError):
    """The statement is not one read-only SELECT of the product's tables; the message says why."""


@dataclass(frozen=True)
class Limits:
    """What one ad-hoc query may use, sent as client settings."""

    max_execution_time_s: int = 10
    max_memory_bytes: int = 1 << 30

    def settings(self, max_rows: int) -> dict[str, Any]:
        """``readonly`` last: over HTTP the settings apply in order, and once ``readonly = 1`` is set
        no other setting may change (that is what keeps the text from changing them)."""
        return {
            "max_execution_time": self.max_execution_time_s,
            "max_memory_usage": self.max_memory_bytes,
            "max_result_rows": max_rows,
            "result_overflow_mode": "break",
            "readonly": 1,
        }


@dataclass(frozen=True)
class Node:
    """One line of ``EXPLAIN AST``: its depth, its kind and its name (a function's, a table's)."""

    depth: int
    kind: str
    name: str


def parse_ast(lines: list[str]) -> list[Node]:
    """``EXPLAIN AST`` lines as nodes: one space of indent per level, ``Kind name (children n)``."""
    out = []
    for line in lines:
        body = line.lstrip(" ")
        kind, _, rest = body.partition(" ")
        name = rest.split(" (", 1)[0] if not rest.startswith("(") else ""
        out.append(Node(len(line) - len(body), kind, name))
    return out


def judge(nodes: list[Node], database: str) -> None:
    """Refuse anything but one SELECT of ``database``'s tables; see the module docstring."""
    roots = [n for n in nodes if n.depth == 0]
    if len(roots) != 1 or roots[0].kind != ROOT:
        kind = roots[0].kind if roots else "nothing"
        raise SqlRefused(f"only one SELECT statement is allowed (ClickHouse parsed a {kind})")
    top = [n for n in nodes if n.depth == 1]
    for n in top[1:]:
        if n.kind == "Identifier" and n.name == CLIENT_FORMAT:
            continue
        what = "FORMAT" if n.kind == "Identifier" else "INTO OUTFILE" if n.kind == "Literal" else n.kind
        raise SqlRefused(f"{what} is not allowed: the API picks the output")
    for i, n in enumerate(nodes):
        if n.kind == "Set":
            raise SqlRefused("SETTINGS is not allowed: the API sets the limits")
        if n.kind == "Function":
            name = n.name.lower()
            table_function = i > 0 and nodes[i - 1].kind == "TableExpression" and nodes[i - 1].depth < n.depth
            if name in READERS or name.startswith(READER_PREFIXES):
                raise SqlRefused(f"{n.name}() is not allowed: it reads outside the product's tables")
            if table_function and name not in TABLE_FUNCTIONS:
                raise SqlRefused(f"table function {n.name}() is not allowed: query the product's tables")
        if n.kind == "TableIdentifier" and not _own_table(n.name, database):
            raise SqlRefused(f"table {n.name} is not allowed: only the tables of {database} can be queried")


def _own_table(name: str, database: str) -> bool:
    """An unqualified name (the session's database is the product's) or one qualified with it."""
    if name.startswith("`"):
        return "`." not in name  # a quoted name with no qualifier
    db, dot, _table = name.partition(".")
    return not dot or db == database


def prepare(store: Store, query: str, limits: Limits) -> str:
    """The canonical statement to run for ``query``, or :class:`SqlRefused` saying what to fix."""
    if not query.strip():
        raise SqlRefused("query is empty: send one SELECT statement")
    settings = limits.settings(1000)
    try:
        rows = store.query("SELECT formatQuerySingleLine({q:String})", {"q": query}, settings)
    except StoreError as err:
        raise SqlRefused(f"ClickHouse could not parse the query: {_first_line(err)}") from None
    canonical = str(rows.rows[0][0])
    try:
        # No client settings here: clickhouse-connect's chdb backend sends them as a trailing SETTINGS
        # clause, which would show in the tree. EXPLAIN AST only parses; it runs nothing.
        ast = store.query(f"EXPLAIN AST {canonical}")
    except StoreError as err:
        raise SqlRefused(f"ClickHouse could not explain the query: {_first_line(err)}") from None
    judge(parse_ast([str(r[0]) for r in ast.rows]), store.database)
    return canonical


def run(store: Store, query: str, limit: int, limits: Limits) -> Rows:
    """``query`` judged and run under ``limits``, at most ``limit`` rows (``break`` stops the read
    at the block that passes the limit; the rest of that block is cut here)."""
    statement = prepare(store, query, limits)
    rows = store.query(statement, None, limits.settings(limit))
    return Rows(rows.columns, rows.rows[:limit])


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:400] if text else type(err).__name__
