"""A ClickHouse server over HTTP (production: the docker-compose service, or any cluster)."""

from __future__ import annotations

from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from store.client_store import ClientStore


def open_server(
    url: str,
    database: str = "breakfix",
    *,
    connect_timeout_s: float = 5.0,
    send_receive_timeout_s: float = 30.0,
    compress: bool | str = True,
) -> ClientStore:
    """Connect to ``http(s)://[user:password@]host:port``.

    Timeouts are short on purpose: the sink would rather spool a batch than stall on a dead server.
    """
    u = urlparse(url)

    def connect() -> Client:
        return clickhouse_connect.get_client(
            interface=u.scheme or "http",
            host=u.hostname or "localhost",
            port=u.port or (8443 if u.scheme == "https" else 8123),
            username=u.username or "default",
            password=u.password or "",
            connect_timeout=connect_timeout_s,
            send_receive_timeout=send_receive_timeout_s,
            compress=compress,
            query_retries=0,
        )

    return ClientStore(connect(), database, "server", connect)
