"""The report and the fleet exporter over a replayed simulator run in real ClickHouse engines.

The exporter is checked the way an SRE would: curl ``/metrics`` on a loopback port, and compare each
figure with SQL over the same tables, written independently of the collector's queries.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.clickhouse_http import ClickHouseHttpServer, clickhouse_http_fixture  # noqa: F401
from fixtures.replayed_run import replayed_store_fixture  # noqa: F401 - the replayed_store fixture
from prometheus_client.parser import text_string_to_metric_families

from breakfix.metrics import serve_fleet
from breakfix.report import build_report
from store.base import Store
from store.client_store import ClientStore
from store.migrate import migrate
from store.queries import REPAIRS, run_saved

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BREAKFIX = str(Path(sys.executable).parent / "breakfix")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _curl(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = subprocess.run(
        ["curl", "-sf", f"http://127.0.0.1:{port}/metrics"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name.startswith("breakfix_")
    }


def _sql(store: Store, text: str) -> list[tuple[Any, ...]]:
    return store.query(text.replace("$db", store.database)).rows


@pytest.fixture
def empty_store(chdb_client: Any, unique: str) -> Iterator[Store]:
    s = ClientStore(chdb_client, f"e_{unique}", "chdb")
    migrate(s)
    yield s
    s.command(f"DROP DATABASE IF EXISTS {s.database}")


def _panel_states(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="panel" id="panel-(\w+)" data-state="(\w+)"', html))


def test_report_of_a_replayed_run_draws_every_question(replayed_store: Store, tmp_path: Path) -> None:
    html = build_report(replayed_store, tmp_path / "r.html").read_text()
    states = _panel_states(html)
    assert set(states) == {"states", "capacity", "mttr", "precision", "repeat", "incident"}
    drawn = {k for k, v in states.items() if v == "plot"}
    assert {"states", "capacity", "mttr", "precision", "incident"} <= drawn
    assert "<script src=" not in html  # plotly.js is inlined: viewable offline
    assert "Plotly.newPlot" in html


def test_empty_store_gives_no_data_panels(empty_store: Store, tmp_path: Path) -> None:
    html = build_report(empty_store, tmp_path / "e.html").read_text()
    assert set(_panel_states(html).values()) == {"empty"}
    assert html.count('class="no-data"') == 6


def test_curl_metrics_equals_sql(replayed_store: Store) -> None:
    server = serve_fleet(replayed_store, 0)
    try:
        got = _curl(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
    assert got[("breakfix_store_up", ())] == 1
    # nodes by state: last applied decision per node, inventory nodes without one are Healthy
    last = dict(_sql(replayed_store, "SELECT node, argMax(to_state, time) FROM $db.decisions FINAL"
                                     " GROUP BY node"))  # fmt: skip
    inventory = {r[0] for r in _sql(replayed_store, "SELECT DISTINCT node FROM $db.node_inventory")}
    expected: dict[str, int] = {}
    for node in inventory | set(last):
        expected[last.get(node, "Healthy")] = expected.get(last.get(node, "Healthy"), 0) + 1
    nodes = {dict(k[1])["state"]: v for k, v in got.items() if k[0] == "breakfix_nodes"}
    assert nodes == expected and sum(nodes.values()) == len(inventory)
    # false positives and repeat offenders: the saved analyst queries
    fps = run_saved(replayed_store, "false_positive_quarantines").dicts()
    fp_metric = sum(v for k, v in got.items() if k[0] == "breakfix_false_positive_quarantines")
    assert fp_metric == len(fps)
    offenders = run_saved(replayed_store, "repeat_offenders").rows
    assert got[("breakfix_repeat_offender_nodes", ())] == len(offenders)
    # mean repair time per class against the saved MTTR's repair counts and an independent mean
    mttr = {r["failure_class"]: r["repaired"] for r in run_saved(replayed_store, "mttr").dicts()}
    repairs = {dict(k[1])["failure_class"]: v for k, v in got.items() if k[0] == "breakfix_repairs"}
    assert repairs == mttr and repairs
    pool_gpus = dict(_sql(replayed_store, "SELECT pool, sum(g) FROM (SELECT node, argMax(pool, time) AS pool,"
                                          " argMax(gpus, time) AS g FROM $db.node_inventory GROUP BY node)"
                                          " GROUP BY pool"))  # fmt: skip
    assert {dict(k[1])["pool"]: v for k, v in got.items() if k[0] == "breakfix_pool_gpus"} == pool_gpus
    [(finished, succeeded)] = _sql(
        replayed_store,
        "SELECT count(), countIf(status = 'succeeded') FROM $db.actions FINAL WHERE kind = 'result'"
        " AND status IN ('succeeded', 'failed', 'timeout') AND initiator = 'automation'",
    )
    assert got[("breakfix_automation_steps_finished", (("action", "all"),))] == finished
    assert got[("breakfix_automation_success_ratio", (("action", "all"),))] == round(succeeded / finished, 4)


def test_unreadable_store_reports_down_not_a_crash(chdb_client: Any) -> None:
    server = serve_fleet(ClientStore(chdb_client, "no_such_database_here", "chdb"), 0)
    try:
        got = _curl(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
    assert got == {("breakfix_store_up", ()): 0.0}


def test_cli_exporter_over_http_store_matches_sql(
    replayed_store: Store, clickhouse_http: ClickHouseHttpServer, tmp_path: Path
) -> None:
    """``breakfix metrics --port`` and ``breakfix report`` as processes against a ClickHouse HTTP store."""
    dsn = f"{clickhouse_http.url}/?database={replayed_store.database}"
    port = _free_port()
    proc = subprocess.Popen(
        [BREAKFIX, "metrics", "--store", dsn, "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                got = _curl(port)
                break
            except subprocess.CalledProcessError:
                assert proc.poll() is None and time.monotonic() < deadline, "exporter did not start"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    [(n,)] = _sql(replayed_store, "SELECT count() FROM (SELECT DISTINCT node FROM $db.node_inventory)")
    assert sum(v for k, v in got.items() if k[0] == "breakfix_nodes") == n
    out = tmp_path / "cli.html"
    subprocess.run(
        [BREAKFIX, "report", "--store", dsn, "--out", str(out)],
        cwd=REPO, check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert "plot" in _panel_states(out.read_text()).values()


def test_summary_report_and_metrics_count_the_same_repairs_and_clearances(replayed_store: Store) -> None:
    """A repair is a quarantine that came back through repair and validation; a clearance is a node back
    to Healthy without one. The demo summary, the report's rows and /metrics give the same figures."""
    from datetime import UTC, datetime

    from breakfix.demo.summary import query

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rows = replayed_store.query(
        REPAIRS.replace("$db", replayed_store.database), {"since": epoch}
    ).dicts()
    summary = query(replayed_store, "mttr")[0]
    server = serve_fleet(replayed_store, 0)
    try:
        got = _curl(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
    metrics = sum(v for k, v in got.items() if k[0] == "breakfix_repairs")
    saved = sum(r["repaired"] for r in run_saved(replayed_store, "mttr").dicts())
    assert summary["repaired"] == len(rows) == metrics == saved
    # every counted repair ended in returned_to_service; clearances are counted apart and never repairs
    [(returned,)] = _sql(
        replayed_store,
        "SELECT count() FROM $db.decisions FINAL"
        " WHERE to_state = 'Healthy' AND trigger = 'returned_to_service'",
    )
    cleared = query(replayed_store, "clearances")[0]["cleared"] or 0
    [(healthy,)] = _sql(
        replayed_store,
        "SELECT count() FROM $db.decisions FINAL WHERE to_state = 'Healthy' AND from_state != 'Healthy'"
        " AND trigger IN ('evidence_cleared', 'cleared_without_action')",
    )
    assert len(rows) <= returned and cleared == healthy


def _tiles(html: str) -> dict[str, float]:
    """The report's summary tiles, label → figure (numbers only)."""
    out = {}
    for value, label in re.findall(r"<div><b>([^<]*)</b>([^<]*)</div>", html):
        num = value.replace(",", "").removesuffix(" min")
        if re.fullmatch(r"-?\d+(\.\d+)?", num):
            out[label] = float(num)
    return out


def test_every_figure_shared_by_summary_report_and_metrics_agrees(
    replayed_store: Store, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each figure the demo summary, the report's tiles and /metrics all show is the same number:
    fleet size, GPUs, repairs, repeat offenders, quarantines and false quarantines (judged by the
    checks in the report and /metrics; by the simulator's labels in the summary and in the report of
    a store that holds them, as the demo's does)."""
    from breakfix.demo.summary import load_labels, query

    tiles = _tiles(build_report(replayed_store, tmp_path / "r.html").read_text())
    server = serve_fleet(replayed_store, 0)
    try:
        got = _curl(server.server_port)
    finally:
        server.shutdown()
        server.server_close()

    def metric(name: str) -> float:
        return sum(v for k, v in got.items() if k[0] == name)

    assert tiles["nodes in fleet"] == metric("breakfix_nodes")
    assert tiles["GPUs"] == metric("breakfix_pool_gpus")
    assert (
        tiles["repairs completed"]
        == metric("breakfix_repairs")
        == query(replayed_store, "mttr")[0]["repaired"]
    )
    assert tiles["repeat offenders"] == metric("breakfix_repeat_offender_nodes")
    assert tiles["false quarantines"] == metric("breakfix_false_positive_quarantines")
    [(entered,)] = _sql(
        replayed_store,
        "SELECT count() FROM $db.decisions FINAL"
        " WHERE to_state = 'Quarantined' AND from_state != 'Quarantined'",
    )
    assert tiles["quarantines"] == entered > 0
    # With ground truth in the store the report judges by it, as the demo summary does.
    labels = next(tmp_path_factory.getbasetemp().glob("replayed*/labels.jsonl"))
    load_labels(replayed_store, labels)
    try:
        labelled = _tiles(build_report(replayed_store, tmp_path / "l.html").read_text())
        summary = query(replayed_store, "quarantines")[0]
    finally:
        replayed_store.command(f"DROP TABLE IF EXISTS {replayed_store.database}.demo_labels")
    assert labelled["quarantines"] == summary["quarantines"] == entered
    assert labelled["false quarantines"] == summary["false_positives"]
    assert labelled["repairs completed"] == tiles["repairs completed"]
