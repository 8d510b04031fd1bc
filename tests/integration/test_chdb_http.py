"""The embedded store served over the ClickHouse HTTP protocol (what `breakfix up` runs): users, and
a read-only profile whose limits no client setting or statement text can lift.

Driven by clickhouse-connect's own HTTP client, the production code path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from store.chdb_http import ChdbHttpServer, ReadOnlyLimits, ServerConfig, User

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(chdb_client: Any, chdb_path: Path) -> Iterator[ChdbHttpServer]:
    users = {"writer": User("writer", "w-secret"), "reader": User("reader", "r-secret", readonly=True)}
    limits = ReadOnlyLimits(max_execution_time=5, max_result_rows=100_000)
    srv = ChdbHttpServer(chdb_path, config=ServerConfig(users=users, limits=limits)).start()
    yield srv
    srv.stop()


def client(srv: ChdbHttpServer, user: str, password: str, **settings: Any) -> Any:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=srv.port, username=user, password=password, settings=settings or None
    )


@pytest.fixture
def table(server: ChdbHttpServer, unique: str) -> Iterator[str]:
    w = client(server, "writer", "w-secret")
    name = f"ro_{unique}"
    w.command(f"CREATE TABLE default.{name} (a Int32) ENGINE = MergeTree ORDER BY a")
    w.insert(f"default.{name}", [[1], [2]], column_names=["a"])
    yield f"default.{name}"
    w.command(f"DROP TABLE IF EXISTS default.{name}")
    w.close()


def test_the_reader_reads_and_cannot_write(server: ChdbHttpServer, table: str) -> None:
    r = client(server, "reader", "r-secret")
    assert r.query(f"SELECT sum(a) FROM {table}").result_rows == [(3,)]
    with pytest.raises(DatabaseError, match="readonly"):
        r.command(f"INSERT INTO {table} VALUES (9)")
    with pytest.raises(DatabaseError):
        r.command(f"DROP TABLE {table}")
    r.close()


def test_no_client_setting_or_statement_lifts_the_read_only_profile(
    server: ChdbHttpServer, table: str
) -> None:
    # clickhouse-connect itself refuses to send readonly=0 to a read-only user: send it raw
    lift = {"readonly": "0", "max_result_rows": "1000000000"}
    auth = ("reader", "r-secret")
    insert = httpx.post(server.url, params=lift, auth=auth, content=f"INSERT INTO {table} VALUES (9)")
    assert insert.status_code != 200 and "readonly" in insert.text.lower()
    many = "SELECT number FROM system.numbers LIMIT 200000"
    big = httpx.post(server.url, params=lift, auth=auth, content=many)
    assert big.status_code != 200 and "396" in big.headers.get("X-ClickHouse-Exception-Code", "")
    inline = httpx.post(server.url, auth=auth, content=f"SELECT a FROM {table} SETTINGS readonly = 0")
    assert inline.status_code != 200
    w = client(server, "writer", "w-secret")
    assert w.query(f"SELECT count() FROM {table}").result_rows == [(2,)]  # nothing was written
    w.close()


def test_a_wrong_password_is_refused(server: ChdbHttpServer) -> None:
    with pytest.raises(DatabaseError, match=r"516|Authentication"):
        client(server, "reader", "guess").query("SELECT 1")


def test_the_reader_may_tighten_its_limits_as_the_api_does(server: ChdbHttpServer, table: str) -> None:
    """The API's ad-hoc SQL sends readonly=1 and lower limits as client settings; a constrained
    read-only profile accepts them (downwards only)."""
    r = client(server, "reader", "r-secret", readonly=1, max_execution_time=5, max_result_rows=10,
               result_overflow_mode="break")  # fmt: skip
    assert r.query(f"SELECT sum(a) FROM {table}").result_rows == [(3,)]
    with pytest.raises(DatabaseError, match="readonly"):
        r.command(f"INSERT INTO {table} VALUES (9)")
    r.close()
