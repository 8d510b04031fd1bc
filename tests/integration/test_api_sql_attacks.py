"""Each way a viewer token escaped the ad-hoc SQL endpoint, performed against the served API on chdb.

The endpoint used to wrap the text (``SELECT * FROM (text) LIMIT n SETTINGS readonly = 1``) after a
regex check, so a text ending in ``) --`` commented out the wrapper's limits; ``file()`` then read
the API's own tokens file, ``url()`` fetched internal URLs, ``INTO/**/OUTFILE`` wrote a ``.pth``
file (code execution at the next Python start), nothing bounded time or memory, and one heavy query
held the store lock every other call, the kill switch included, waited on. Each attack here must be
refused with a 422 that says why, with nothing read, fetched or written.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from breakfix.api.sqlguard import Limits
from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

api_server = fx.api_server  # the shared fixture, registered in this module

pytestmark = pytest.mark.integration
SECRET = "tok-admin-SECRET-0123456789"


def sql(api: ApiServer, query: str, limit: int = 100, role: str = "viewer") -> httpx.Response:
    return httpx.post(
        api.url + "/sql", headers=api.headers(role), json={"query": query, "limit": limit}, timeout=60
    )


def refused(api: ApiServer, query: str, why: str) -> str:
    r = sql(api, query)
    assert r.status_code == 422, f"{query!r} was not refused: {r.status_code} {r.text[:300]}"
    detail = str(r.json()["detail"])
    assert why.lower() in detail.lower(), f"{query!r}: {detail}"
    assert SECRET not in r.text
    return detail


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    """A file the API process can read, standing for its tokens file."""
    p = tmp_path / "tokens.yaml"
    p.write_text(f"{SECRET}:\n  actor: admin\n  role: admin\n")
    return p


@pytest.fixture
def internal_url() -> Iterator[tuple[str, list[str]]]:
    """An internal HTTP service on loopback that records every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"internal-secret\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/admin", hits
    finally:
        server.shutdown()
        server.server_close()


def test_an_ordinary_select_of_the_product_tables_still_works(api_server: ApiServer) -> None:
    r = sql(api_server, "WITH q AS (SELECT node, pool FROM node_inventory FINAL) SELECT count() AS n FROM q")
    assert r.status_code == 200 and r.json()["rows"][0][0] >= 6, r.text
    db = api_server.store.database
    qualified = sql(api_server, f"SELECT count() FROM {db}.decisions AS d JOIN (SELECT 1 AS one) AS o ON 1")
    assert qualified.status_code == 200, qualified.text


def test_closing_the_wrapper_with_a_comment_is_refused(api_server: ApiServer, tokens_file: Path) -> None:
    escape = f"SELECT 1) UNION ALL SELECT * FROM file('{tokens_file}', 'LineAsString') --"
    refused(api_server, escape, "parse")
    refused(api_server, "SELECT 1 FROM audit) --", "parse")


def test_file_cannot_read_the_tokens_file(api_server: ApiServer, tokens_file: Path) -> None:
    read = f"file('{tokens_file}', 'LineAsString')"
    refused(api_server, f"SELECT * FROM {read}", "file()")
    refused(api_server, f"SELECT file('{tokens_file}')", "file()")  # the ordinary function reads it too
    refused(api_server, f"SELECT id FROM audit WHERE id IN (SELECT * FROM {read})", "file()")
    refused(api_server, f"SELECT * FROM audit AS a JOIN {read} AS f ON 1", "file()")


def test_url_and_other_remote_readers_fetch_nothing(
    api_server: ApiServer, internal_url: tuple[str, list[str]]
) -> None:
    url, hits = internal_url
    assert httpx.get(url).text == "internal-secret\n" and hits, "the internal service answers"
    hits.clear()
    refused(api_server, f"SELECT * FROM url('{url}', 'LineAsString')", "url()")
    refused(api_server, f"SELECT * FROM s3('{url}/b/k.csv', 'CSV')", "s3()")
    refused(api_server, "SELECT * FROM remote('127.0.0.1:9000', system.one)", "remote()")
    refused(api_server, "SELECT * FROM input('x String')", "input()")
    refused(api_server, "SELECT * FROM executable('id', 'TSV', 'x String')", "executable()")
    refused(api_server, "SELECT * FROM merge('system', '^users$')", "merge()")
    assert hits == [], "the API fetched an internal URL"


def test_into_outfile_writes_nothing(api_server: ApiServer, tmp_path: Path) -> None:
    target = tmp_path / "evil.pth"
    refused(api_server, f"SELECT 'import os' INTO/**/OUTFILE '{target}'", "INTO OUTFILE")
    refused(api_server, f"SELECT 'import os' INTO OUTFILE '{target}' FORMAT TSVRaw", "INTO OUTFILE")
    assert not target.exists()


def test_settings_and_format_in_the_text_are_refused(api_server: ApiServer) -> None:
    refused(api_server, "SELECT 1 SETTINGS readonly = 0", "SETTINGS")
    refused(api_server, "SELECT count() FROM numbers(10) SETTINGS max_execution_time = 100000", "SETTINGS")
    refused(api_server, "SELECT * FROM (SELECT 1 SETTINGS max_memory_usage = 0)", "SETTINGS")
    refused(api_server, "SELECT 1 FORMAT JSONEachRow", "FORMAT")


def test_only_one_select_of_the_product_database(api_server: ApiServer) -> None:
    db = api_server.store.database
    refused(api_server, f"SELECT 1; DROP TABLE {db}.audit", "parse")
    refused(api_server, f"DROP TABLE {db}.audit", "only one SELECT")
    refused(api_server, f"SELECT 1 PARALLEL WITH DROP TABLE {db}.audit", "only one SELECT")  # one statement
    refused(api_server, "INSERT INTO audit (id) VALUES ('x')", "only one SELECT")
    refused(api_server, "EXPLAIN SELECT 1", "only one SELECT")
    refused(api_server, "SHOW TABLES", "only one SELECT")
    refused(api_server, "SELECT name FROM system.users", "system.users")
    refused(api_server, "SELECT * FROM other_db.secrets", "other_db.secrets")
    assert sql(api_server, "SELECT count() FROM audit").status_code == 200, "the table is still there"


def test_limits_bound_rows_time_and_memory(api_server: ApiServer) -> None:
    r = sql(api_server, "SELECT number FROM numbers(1000000)", limit=7)
    assert r.status_code == 200 and len(r.json()["rows"]) == 7
    reader = api_server.ctx.reader
    before = reader.sql_limits  # type: ignore[attr-defined]
    reader.sql_limits = Limits(max_execution_time_s=1, max_memory_bytes=64 << 20)  # type: ignore[attr-defined]
    try:
        slow = sql(api_server, "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 1")
        assert slow.status_code == 422 and "TIMEOUT" in slow.text.upper(), slow.text
        big = sql(api_server, "SELECT groupArray(toString(number)) FROM numbers(100000000)")
        assert big.status_code == 422 and "MEMORY" in big.text.upper(), big.text
    finally:
        reader.sql_limits = before  # type: ignore[attr-defined]


def test_a_heavy_viewer_query_does_not_hold_up_the_kill_switch(api_server: ApiServer) -> None:
    reader = api_server.ctx.reader
    before = reader.sql_limits  # type: ignore[attr-defined]
    reader.sql_limits = Limits(max_execution_time_s=8)  # type: ignore[attr-defined]
    heavy: dict[str, httpx.Response] = {}
    query = "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 1"
    t = threading.Thread(target=lambda: heavy.setdefault("r", sql(api_server, query)))
    try:
        t.start()
        time.sleep(1.0)  # the heavy query is running
        assert t.is_alive()
        start = time.monotonic()
        body = {"on": True, "pool": "infer", "reason": "heavy query test"}
        on = httpx.post(api_server.url + "/killswitch", headers=api_server.headers("operator"), json=body)
        took = time.monotonic() - start
        assert on.status_code == 200, on.text
        assert t.is_alive(), "the heavy query must still be running while the kill switch answered"
        assert took < 4.0, f"the kill switch waited {took:.1f} s behind a viewer's query"
        off = {"on": False, "pool": "infer", "reason": "heavy query test done"}
        assert httpx.post(api_server.url + "/killswitch", headers=api_server.headers("operator"), json=off)
    finally:
        t.join(30)
        reader.sql_limits = before  # type: ignore[attr-defined]
    assert heavy["r"].status_code == 422 and "TIMEOUT" in heavy["r"].text.upper()
