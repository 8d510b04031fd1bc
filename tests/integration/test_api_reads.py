"""Read endpoints over the served API: nodes, node detail, decisions, runbooks, SQL, 401/404/422."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from fixtures.clickhouse_http import ClickHouseHttpServer, clickhouse_http_fixture  # noqa: F401

from breakfix.api.control import ControlState
from breakfix.api.sqlguard import SqlRefused
from breakfix.api.state import StoreStateReader
from schemas.control import ControlKind, ControlMessage
from store.rows import COLUMNS, control_rows
from store.server_backend import open_server
from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

api_server = fx.api_server  # the shared fixture, registered in this module

pytestmark = pytest.mark.integration


def get(api: ApiServer, path: str, role: str = "viewer", **params: object) -> httpx.Response:
    return httpx.get(api.url + path, headers=api.headers(role), params=params, timeout=30)


def test_healthz_and_metrics_need_no_token(api_server: ApiServer) -> None:
    assert httpx.get(api_server.url + "/healthz").json() == {"status": "ok"}
    for path in ("/metrics", "/metrics/"):
        metrics = httpx.get(api_server.url + path)
        assert metrics.status_code == 200 and "python_info" in metrics.text, path


def test_nodes_list_with_state_and_filters(api_server: ApiServer) -> None:
    rows = get(api_server, "/nodes", pool="train").json()
    states = {r["node"]: r["state"] for r in rows}
    assert states == {
        "gpu-node-1": "Quarantined",
        "gpu-node-2": "Healthy",
        "gpu-node-3": "Quarantined",
        "gpu-node-4": "Healthy",
    }
    quarantined = get(api_server, "/nodes", state="Quarantined").json()
    assert [r["node"] for r in quarantined] == ["gpu-node-1", "gpu-node-3"]
    assert quarantined[0]["failure_class"] == "gpu_hardware" and quarantined[0]["gpus"] == 8
    assert quarantined[0]["labels"] == {"fabric": "ib-r1"}  # from its latest node.inventory
    assert get(api_server, "/nodes", limit=1).json()[0]["node"] == "gpu-node-1"


def test_node_detail_has_decisions_and_404(api_server: ApiServer) -> None:
    node = get(api_server, "/nodes/gpu-node-1").json()
    assert node["state"] == "Quarantined" and node["rack"] == "r1"
    assert [d["id"] for d in node["decisions"]] == ["dec-gpu-node-1"]
    missing = get(api_server, "/nodes/no-such-node")
    assert missing.status_code == 404 and "no-such-node" in missing.json()["detail"]


def test_decisions_filtered_by_node(api_server: ApiServer) -> None:
    rows = get(api_server, "/decisions", node="gpu-node-3").json()
    assert [r["node"] for r in rows] == ["gpu-node-3"] and rows[0]["to_state"] == "Quarantined"


def test_bad_query_parameters_are_422_with_a_message(api_server: ApiServer) -> None:
    r = get(api_server, "/nodes", state="Sleeping")
    assert r.status_code == 422 and "state" in r.json()["detail"]
    r = get(api_server, "/nodes", limit=0)
    assert r.status_code == 422 and "limit" in r.json()["detail"]


def test_unauthenticated_calls_are_401(api_server: ApiServer) -> None:
    assert httpx.get(api_server.url + "/nodes").status_code == 401
    bad = httpx.get(api_server.url + "/nodes", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"


def test_runbooks_catalog(api_server: ApiServer) -> None:
    books = {b["name"]: b for b in get(api_server, "/runbooks").json()}
    assert books["rma-escalation"]["approval"]["kind"] == "two_person"
    assert "gpu_hardware" in books["reboot"]["classes"] and books["reboot"]["steps"][0]["name"] == "cordon"


def test_sql_is_read_only(api_server: ApiServer) -> None:
    h = api_server.headers("viewer")
    db = api_server.store.database
    ok = httpx.post(
        api_server.url + "/sql", headers=h, json={"query": f"SELECT count() AS n FROM {db}.node_inventory"}
    )
    assert ok.status_code == 200 and ok.json()["columns"] == ["n"] and ok.json()["rows"][0][0] >= 6
    for bad in (f"DROP TABLE {db}.audit", f"SELECT 1; DROP TABLE {db}.audit", "SELECT * FROM nowhere.t"):
        r = httpx.post(api_server.url + "/sql", headers=h, json={"query": bad})
        assert r.status_code == 422 and r.json()["detail"], bad
    assert httpx.post(api_server.url + "/sql", headers=h, json={}).status_code == 422


def test_sql_names_tables_without_the_database(api_server: ApiServer) -> None:
    """Agents write ``FROM audit``: the query runs with the store's database as the current one."""
    h = api_server.headers("agent")
    ok = httpx.post(api_server.url + "/sql", headers=h, json={"query": "SELECT count() AS n FROM audit"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["rows"][0][0] >= 1  # at least the calls this module already made
    nodes = httpx.post(
        api_server.url + "/sql",
        headers=h,
        json={"query": "SELECT node FROM node_inventory FINAL WHERE pool = 'infer' ORDER BY node"},
    )
    assert nodes.json()["rows"] == [["inf-node-1"], ["inf-node-2"]], nodes.text
    for bad in ("DROP TABLE audit", "INSERT INTO audit (id) VALUES ('x')", "SELECT 1; DROP TABLE audit"):
        r = httpx.post(api_server.url + "/sql", headers=h, json={"query": bad})
        assert r.status_code == 422 and re.search("SELECT|parse", r.json()["detail"]), bad
    assert httpx.post(api_server.url + "/sql", headers=h, json={"query": "SELECT 1"}).status_code == 200


def test_sql_over_the_clickhouse_http_backend_uses_the_store_database(
    api_server: ApiServer, clickhouse_http: ClickHouseHttpServer
) -> None:
    store = open_server(clickhouse_http.url, api_server.store.database, compress=False)
    try:
        reader = StoreStateReader(store, sql_store=store.session())
        got = reader.sql("SELECT count() AS n FROM node_inventory FINAL")
        assert got == {"columns": ["n"], "rows": [[6]]}
        # The server's parser judged the statement: a table function is refused before it runs.
        with pytest.raises(SqlRefused, match=re.escape("url()")):
            reader.sql("SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')")
    finally:
        store.close()


def test_recorded_kill_switches_seed_a_restarted_api(api_server: ApiServer) -> None:
    for i, (scope, on) in enumerate((("pool:infer", True), ("global", True), ("global", False))):
        msg = ControlMessage(
            id=f"c{i}",
            time=datetime(2026, 1, 1, 0, i, tzinfo=UTC),
            kind=ControlKind.KILLSWITCH,
            scope=scope,
            value={"on": on},
            actor="ops",
        )
        for table, row in control_rows(msg):
            api_server.store.insert(table, COLUMNS[table], [row])
    state = ControlState()
    state.seed(StoreStateReader(api_server.store).killswitches())
    assert state.snapshot() == {"global": False, "pools": {"infer": True}}
    assert state.killswitch_on("infer") and not state.killswitch_on("train")
