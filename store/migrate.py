"""Versioned schema migrations: ``migrations/NNN_name.sql`` applied in order, each recorded once.

A migration file is a list of statements separated by ``;`` at line ends. ``$db`` names the
database; ``$telemetry_ttl`` and ``$audit_ttl`` expand to a TTL clause on ingest time (or nothing).
Applied versions are recorded in ``schema_migrations``; rerunning applies only what is new, and every
statement is ``IF NOT EXISTS`` so a run interrupted half-way can simply be run again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template

from store.base import Store

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
TTL_TABLES = {
    "telemetry": ("events", "dead_letters", "evidence", "node_inventory"),
    "audit": ("proposals", "decisions", "actions", "audit", "control", "node_state_history", "incidents"),
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Retention:
    """Days to keep rows after ingestion; 0 keeps them forever (auditors usually want that)."""

    telemetry_days: int = 90
    audit_days: int = 0


def _ttl(days: int) -> str:
    return f"TTL toDateTime(ingested_at) + INTERVAL {days} DAY" if days > 0 else ""


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for f in sorted(directory.glob("*.sql")):
        m = _NAME.match(f.name)
        if not m:
            raise ValueError(f"migration file {f.name!r} is not named NNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), f.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return found


def statements(sql: str, database: str, retention: Retention) -> list[str]:
    """Render a migration and split it into single statements (comment lines dropped)."""
    text = Template(sql).substitute(
        db=database, telemetry_ttl=_ttl(retention.telemetry_days), audit_ttl=_ttl(retention.audit_days)
    )
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def applied_versions(store: Store) -> set[int]:
    rows = store.query(f"SELECT version FROM {store.database}.schema_migrations FINAL")
    return {int(r[0]) for r in rows.rows}


def migrate(store: Store, retention: Retention | None = None) -> list[Migration]:
    """Bring ``store.database`` up to date; returns the migrations applied by this call."""
    ret = retention or Retention()
    db = store.database
    store.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    store.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
        "checksum String, applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = applied_versions(store)
    applied = []
    for m in load_migrations():
        if m.version in done:
            continue
        for stmt in statements(m.sql, db, ret):
            store.command(stmt)
        store.insert(
            "schema_migrations",
            ("version", "name", "checksum", "applied_at"),
            [(m.version, m.name, m.checksum, datetime.now(UTC))],
        )
        applied.append(m)
    return applied


def set_retention(store: Store, retention: Retention) -> None:
    """Change TTLs of existing tables (migrations only set them at creation)."""
    with_ttl = {
        str(r[0])
        for r in store.query(
            "SELECT name FROM system.tables WHERE database = {db:String} AND engine_full LIKE '% TTL %'",
            {"db": store.database},
        ).rows
    }
    for group, days in (("telemetry", retention.telemetry_days), ("audit", retention.audit_days)):
        for table in TTL_TABLES[group]:
            if days > 0:
                store.command(f"ALTER TABLE {store.database}.{table} MODIFY {_ttl(days)}")
            elif table in with_ttl:
                store.command(f"ALTER TABLE {store.database}.{table} REMOVE TTL")
