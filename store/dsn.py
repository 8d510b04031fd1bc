"""One string names a store: ``chdb:///path`` (embedded) or ``http(s)://host:port`` (server).

The database travels as a query parameter (``?database=name``, default ``breakfix``) so a single
setting (``BREAKFIX_STORE_DSN``) configures every command; ``BREAKFIX_STORE`` is the streaming
workers' table store (memory/rocksdb), a different setting.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlparse

from store.base import Store

DEFAULT_DSN = "chdb://.breakfix/chdb"
ENV_DSN = "BREAKFIX_STORE_DSN"


def default_dsn() -> str:
    return os.environ.get(ENV_DSN, DEFAULT_DSN)


EXAMPLE_PASSWORDS = frozenset(
    {"breakfix", "clickhouse", "default", "admin", "password", "changeme", "change-me", "secret", "example"}
)
"""Passwords of examples and quick starts (the compose file's former default among them)."""
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def password_weakness(dsn: str) -> str | None:
    """Why a server DSN's password must not guard a production store, or None (chdb has none)."""
    u = urlparse(dsn)
    if u.scheme not in ("http", "https"):
        return None
    password = u.password or ""
    if not password:
        return None if (u.hostname or "") in _LOOPBACK else f"{u.hostname} is reached without a password"
    if password.lower() in EXAMPLE_PASSWORDS:
        return f"the password of {u.username or 'default'}@{u.hostname} is an example value"
    return None


def open_store(dsn: str | None = None) -> Store:
    """Open the store a DSN names (``chdb://relative/path`` and ``chdb:///abs/path`` both work)."""
    from store.chdb_backend import open_chdb
    from store.server_backend import open_server

    text = dsn or default_dsn()
    u = urlparse(text)
    database = parse_qs(u.query).get("database", ["breakfix"])[0]
    if u.scheme == "chdb":
        return open_chdb((u.netloc + u.path) or ".breakfix/chdb", database)
    if u.scheme in ("http", "https"):
        base = f"{u.scheme}://{u.netloc}"
        return open_server(base, database)
    raise ValueError(f"unknown store DSN {text!r}: use chdb:///path or http://host:8123")
