"""The body limit holds before parsing and authentication, and anonymous refusals are counted, not
written to the audit store one row each (against the served API on chdb)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from breakfix.api.app import MAX_BODY_BYTES
from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

api_server = fx.api_server  # the shared fixture, registered in this module

pytestmark = pytest.mark.integration


def _metric(api: ApiServer, reason: str) -> float:
    text = httpx.get(api.url + "/metrics").text
    m = re.search(rf'breakfix_api_anonymous_failures_total{{reason="{reason}"}} (\S+)', text)
    return float(m.group(1)) if m else 0.0


def _anonymous_lines(api: ApiServer) -> list[dict[str, object]]:
    rows = httpx.get(api.url + "/audit", headers=api.headers("viewer"), params={"actor": "anonymous"}).json()
    return [r for r in rows if r["action"] == "anonymous.refused"]


def test_an_oversized_body_is_refused_before_auth_and_parsing(api_server: ApiServer) -> None:
    big = b"{" + b"x" * MAX_BODY_BYTES  # not even JSON: a parser would answer 422
    before = _metric(api_server, "body_too_large")
    for headers in ({}, api_server.headers("admin"), {"Authorization": "Bearer nope"}):
        r = httpx.post(api_server.url + "/sql", content=big, headers=headers, timeout=30)
        assert r.status_code == 413 and "body over" in r.json()["detail"], (headers, r.status_code)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    r = httpx.post(api_server.url + "/sql", content=chunks(), headers=api_server.headers("admin"), timeout=30)
    assert r.status_code == 413
    assert _metric(api_server, "body_too_large") == before + 4
    ok = httpx.post(api_server.url + "/sql", json={"query": "SELECT 1"}, headers=api_server.headers("viewer"))
    assert ok.status_code == 200, "a body under the limit is served as before"


def test_anonymous_refusals_are_counted_and_audited_once_per_minute(api_server: ApiServer) -> None:
    before, lines = _metric(api_server, "unauthenticated"), len(_anonymous_lines(api_server))
    for i in range(40):
        headers = {"Authorization": f"Bearer guess-{i}"} if i % 2 else {}
        assert httpx.get(api_server.url + "/nodes", headers=headers).status_code == 401
    assert _metric(api_server, "unauthenticated") == before + 40
    new = _anonymous_lines(api_server)
    assert len(new) - lines <= 1, "one audit line per minute, not one per request"
    assert new and "refused without a known caller" in str(new[0]["detail"])
