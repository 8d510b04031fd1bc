"""Both store engines against real ClickHouse engines: chdb embedded, and clickhouse-connect's HTTP
client against a chdb-backed ClickHouse HTTP endpoint. Same tests, same SQL, same answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fixtures.clickhouse_http import clickhouse_http_fixture  # noqa: F401 - the clickhouse_http fixture

from schemas.actions import ActionRequest
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from schemas.events import Envelope
from schemas.parse import validate_event_dict
from schemas.vocab import Trigger
from store.base import Store, StoreError
from store.client_store import ClientStore
from store.migrate import applied_versions, load_migrations, migrate
from store.queries import run_saved
from store.rows import COLUMNS, group_by_table, rows_for_message
from store.server_backend import open_server
from store.spool import Chunk, Spool
from store.writer import batch_token, write_outputs
from streams.sink.stage import SinkCore

pytestmark = pytest.mark.integration
T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["chdb", "http"])
def store(request: pytest.FixtureRequest, chdb_client: Any, unique: str) -> Iterator[Store]:
    db = f"s_{unique}"
    if request.param == "chdb":
        s: Store = ClientStore(chdb_client, db, "chdb")
    else:
        s = open_server(request.getfixturevalue("clickhouse_http").url, db)
    migrate(s)
    yield s
    s.command(f"DROP DATABASE IF EXISTS {db}")
    if request.param == "http":
        s.close()


def _count(store: Store, sql: str) -> tuple[Any, ...]:
    return store.query(sql.replace("$db", store.database)).rows[0]


def test_migrations_are_recorded_and_idempotent(store: Store) -> None:
    assert applied_versions(store) == {m.version for m in load_migrations()}
    assert migrate(store) == []
    tables = {r[0] for r in store.query(f"SHOW TABLES FROM {store.database}").rows}
    assert {"events", "decisions", "actions", "audit", "node_state_history", "incidents"} <= tables
    assert _count(store, "SELECT count() FROM $db.schema_migrations") == (len(load_migrations()),)


def _events(n: int, start: int = 0) -> list[tuple[Any, ...]]:
    return [
        (f"e{i}", T0 + timedelta(seconds=i), "gpu.sample", "sim", f"n{i % 7}", False, "{}")
        for i in range(start, start + n)
    ]


def test_a_retried_batch_never_double_counts(store: Store) -> None:
    rows = _events(1000)
    token = batch_token("events", rows)
    store.insert("events", COLUMNS["events"], rows, dedup_token=token)
    store.insert("events", COLUMNS["events"], rows, dedup_token=token)  # the same batch, retried
    assert _count(store, "SELECT count() FROM $db.events") == (1000,)
    # Redelivered after a crash but cut differently: a new token, so the raw table holds duplicates,
    # and FINAL (or argMax by id) collapses them to one row per id.
    recut = _events(600, start=400)
    store.insert("events", COLUMNS["events"], recut, dedup_token=batch_token("events", recut))
    assert _count(store, "SELECT count(), uniqExact(id) FROM $db.events FINAL") == (1000, 1000)


def test_refused_statement_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        store.query("SELECT no_such_column FROM system.one")


# --- a small fleet history with known answers ---------------------------------------------------


def _dec(node: str, s: int, frm: str, to: str, cls: str, mode: str = "auto", trigger: str = "t") -> Decision:
    return Decision(
        id=f"{node}-{s}", time=T0 + timedelta(seconds=s), node=node, from_state=NodeState(frm),
        to_state=NodeState(to), trigger=trigger, failure_class=cls, confidence=0.9, action=ActionKind.DRAIN,
        mode=Mode(mode), executable=mode == "auto", reasons=["r"], evidence=[], policy_version="p1",
    )  # fmt: skip


def _inv(node: str, pool: str, gpus: int) -> Envelope:
    return validate_event_dict({
        "id": f"inv-{node}", "type": "node.inventory", "source": "sim", "time": T0.isoformat(), "node": node,
        "data": {"pool": pool, "rack": "r1", "sku": "h100", "gpus": gpus},
    })  # fmt: skip


def _result(node: str, s: int, action: str, status: str, validation: str | None = None) -> Envelope:
    data: dict[str, Any] = {"decision_id": f"{node}-dec", "action": action, "status": status}
    if validation:
        data["validation"] = validation
    return validate_event_dict({
        "id": f"res-{node}-{s}", "type": "action.result", "source": "actuator",
        "time": (T0 + timedelta(seconds=s)).isoformat(), "node": node, "data": data,
    })  # fmt: skip


def _request(node: str, s: int, action: str, initiator: str) -> ActionRequest:
    return ActionRequest(
        id=f"req-{node}-{s}", decision_id=f"{node}-dec", node=node, action=action, playbook="pb",
        playbook_version="1", step="s1", time=T0 + timedelta(seconds=s), initiator=initiator,
    )  # fmt: skip


DECISIONS = [
    # a: suspect → quarantine → repair → validate (passed) → healthy: repaired, the fault unconfirmed
    _dec("a", 0, "Healthy", "Suspect", "gpu_hardware"),
    _dec("a", 60, "Suspect", "Quarantined", "gpu_hardware"),
    _dec("a", 120, "Quarantined", "Repairing", "gpu_hardware"),
    _dec("a", 300, "Repairing", "Validating", "gpu_hardware"),
    _dec("a", 500, "Validating", "Healthy", "gpu_hardware", trigger=Trigger.RETURNED_TO_SERVICE),
    # b: quarantined, validation failed (real fault), escalated
    _dec("b", 0, "Healthy", "Quarantined", "gpu_memory"),
    _dec("b", 210, "Quarantined", "Escalated", "gpu_memory"),
    # c: quarantined, validated clean, back healthy, but the fault recurs within the window; twice
    # quarantined. The second time its evidence clears without a repair: a clearance, not a repair.
    _dec("c", 100, "Healthy", "Quarantined", "gpu_hardware"),
    _dec("c", 400, "Quarantined", "Healthy", "gpu_hardware", trigger=Trigger.RETURNED_TO_SERVICE),
    _dec("c", 1000, "Healthy", "Suspect", "gpu_hardware"),
    _dec("c", 1100, "Suspect", "Quarantined", "gpu_hardware"),
    _dec("c", 2000, "Quarantined", "Healthy", "gpu_hardware", trigger=Trigger.EVIDENCE_CLEARED),
    # d, e: shadow quarantines; d's validation finds the fault, e's does not
    _dec("d", 50, "Healthy", "Quarantined", "thermal_power", mode="shadow"),
    _dec("e", 50, "Healthy", "Quarantined", "thermal_power", mode="shadow"),
    # f: quarantined by automation and still out of service at the end of the hour
    _dec("f", 3000, "Healthy", "Quarantined", "gpu_hardware"),
]
EVENTS = [
    _inv("a", "p1", 8), _inv("b", "p1", 8), _inv("d", "p1", 8), _inv("e", "p1", 8),
    _inv("c", "p2", 4), _inv("f", "p2", 4),
    _result("a", 250, "reboot", "succeeded"),
    _result("b", 100, "drain", "failed"),
    _result("c", 250, "reboot", "succeeded"),  # started by a human: not automation
    _result("a", 400, "validate", "succeeded", "passed"),
    _result("b", 200, "validate", "succeeded", "failed"),
    _result("c", 300, "validate", "succeeded", "passed"),
    _result("d", 100, "validate", "succeeded", "failed"),
    _result("e", 80, "validate", "succeeded", "passed"),
]  # fmt: skip
REQUESTS = [_request("a", 200, "reboot", "automation"), _request("b", 90, "drain", "automation"),
            _request("c", 200, "reboot", "human")]  # fmt: skip


def _telemetry_chunk(values: list[bytes], first_offset: int = 0) -> Chunk:
    n = len(values)
    offsets = list(range(first_offset, first_offset + n))
    return Chunk("breakfix.events", "p.breakfix.events", 2, offsets, [1_740_787_200_000] * n, values)


def _sink(store: Store, tmp_path: Path) -> SinkCore:
    return SinkCore(store, Spool(tmp_path / "spool"))


@pytest.fixture(params=["writer", "sink"])
def history(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Store:
    """The history written by the offline writer, or with its telemetry through the sink's
    ClickHouse-side checks (published JSON in): the metrics must not depend on the path."""
    for _ in range(2):  # written twice: a replay rerun, or a batch redelivered
        if request.param == "writer":
            write_outputs(store, events=EVENTS, decisions=DECISIONS, others=REQUESTS)
        else:
            write_outputs(store, decisions=DECISIONS, others=REQUESTS)
            values = [e.model_dump_json(exclude_none=True).encode() for e in EVENTS]
            _sink(store, tmp_path).insert([_telemetry_chunk(values)])
    return store


ODD = [
    {"id": "e1", "type": "gpu.xid", "source": "dcgm", "time": "2025-03-01T00:00:00Z", "node": "n1",
     "data": {"xid": 79, "gpu": 2}},
    {"id": "e2", "type": "gpu.xid", "time": "2025-03-01T02:00:00.250+02:00", "data": [1], "extra": {"id": 5}},
    {"id": "e3", "type": "action.result", "time": "2025-03-01T00:00:00Z", "node": "n1", "replay": True,
     "data": {"decision_id": "d1", "action": "reboot", "status": "succeeded", "gpu": 3}},
    {"id": "caf\u00e9 \"q\"", "type": "t", "time": "2025-03-01T00:00:00Z", "node": None},
    {"type": "x", "time": "2025-03-01T00:00:00Z"},
    {"id": "e4", "type": "x", "time": "2025-03-01"},
    {"id": "e5", "type": "x", "time": 1740787200},
    {"id": 5, "type": "x", "time": "2025-03-01T00:00:00Z"},
    {"id": "e6", "type": "", "time": "2025-03-01T00:00:00Z"},
    # Strings that start like a JSON number, literal, object or array, and values that are those.
    {"id": "5", "type": "[t", "time": "2025-03-01T00:00:00Z"},
    {"id": "null", "type": "-1", "time": "2025-03-01T00:00:00Z"},
    {"id": True, "type": "t", "time": "2025-03-01T00:00:00Z"},
    {"id": "e8", "type": {"a": 1}, "time": "2025-03-01T00:00:00Z"},
    {"id": "e9", "type": -1, "time": "2025-03-01T00:00:00Z"},
    {"id": ["e10"], "type": "t", "time": "2025-03-01T00:00:00Z"},
    [],
]  # fmt: skip


def test_sink_checks_in_clickhouse_match_the_python_mapping(store: Store, tmp_path: Path) -> None:
    """Published telemetry checked and mapped by ClickHouse's views gives the rows the Python mapping
    (the offline writer's) gives: same accepted events and action rows, same dead-letter ids."""
    values = [orjson.dumps(v) for v in ODD] + [b"{broken json", b"", b'  {"id": "e7" , "type":"t", '
                                               b'"time": "2025-03-01T00:00:00Z"}']  # fmt: skip
    chunk = _telemetry_chunk(values, first_offset=40)
    core = _sink(store, tmp_path)
    core.insert([chunk])
    core.insert([chunk])  # retried: the token drops it in every view's target
    received = datetime.fromtimestamp(1_740_787_200, UTC)
    expected = group_by_table(
        r for src, v in zip(chunk.sources(), values, strict=True)
        for r in rows_for_message("breakfix.events", v, src, received)
    )  # fmt: skip
    db = store.database
    events = store.query(
        f"SELECT id, time, type, source, node, replay, data FROM {db}.events ORDER BY id"
    ).rows
    assert [(*r[:6], orjson.loads(r[6])) for r in events] == sorted(
        (r[0], r[1].replace(tzinfo=None), *r[2:6], orjson.loads(r[6])) for r in expected["events"]
    )
    actions = store.query(f"SELECT * EXCEPT ingested_at FROM {db}.actions").rows
    assert actions == [(r[0], r[1].replace(tzinfo=None), *r[2:]) for r in expected["actions"]]
    letters = store.query(f"SELECT id, message, source FROM {db}.dead_letters ORDER BY id").rows
    assert [r[0] for r in letters] == sorted(r[0] for r in expected["dead_letters"])
    assert {r[1] for r in letters} == {
        "message is not a JSON object", "envelope needs string 'id' and 'type'",
        "time must be an RFC 3339 string with a UTC offset",
    }  # fmt: skip
    assert all(r[2].startswith("p.breakfix.events/2@") for r in letters)
    assert core.stats.rows["events_ingest"] == 2 * len(values)


def _q(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    return run_saved(store, name, **params).dicts()


def test_written_twice_counts_once(history: Store) -> None:
    assert _count(history, "SELECT count() FROM $db.decisions FINAL") == (len(DECISIONS),)
    assert _count(history, "SELECT count() FROM $db.node_state_history FINAL") == (len(DECISIONS),)
    assert _count(history, "SELECT count() FROM $db.actions FINAL") == (len(REQUESTS) + 8,)


def test_automation_success_and_manual_override(history: Store) -> None:
    rates = {r["action"]: (r["finished"], r["succeeded"]) for r in _q(history, "automation_success_rate")}
    # c's steps share a decision a human started, so neither its reboot nor its validation is automation's.
    assert rates == {"(all)": (6, 5), "drain": (1, 0), "reboot": (1, 1), "validate": (4, 4)}
    [mo] = _q(history, "manual_override_rate")
    assert (mo["steps"], mo["human_steps"], mo["manual_override_rate"]) == (3, 1, 0.3333)


def test_false_positives_mttr_and_repeat_offenders(history: Store) -> None:
    # A quarantine is judged by what confirmed its fault: e's check came back clean before any repair
    # (false); a's and c's clean validations came after a reboot, which cannot tell a fixed fault from
    # none (unconfirmed, not false); b's and d's checks failed (confirmed).
    fps = _q(history, "false_positive_quarantines")
    assert [(r["node"], r["decision_id"]) for r in fps] == [("e", "e-50")]
    rates = {r["failure_class"]: (r["validated_quarantines"], r["false_positives"])
             for r in _q(history, "false_positive_rate")}  # fmt: skip
    assert rates == {"gpu_hardware": (0, 0), "gpu_memory": (1, 0), "thermal_power": (2, 1)}
    # A short window: e's check 30 s after its quarantine still counts; none falls out of 20 s but e's.
    assert len(_q(history, "false_positive_quarantines", window_s=20)) == 0
    [mttr] = _q(history, "mttr")
    # From entering Quarantined to the return through repair and validation: a's 440 s and c's first
    # 300 s; c's second return is a clearance and no repair.
    assert (mttr["failure_class"], mttr["repaired"]) == ("gpu_hardware", 2)
    assert (mttr["mttr_median_s"], mttr["mttr_p90_s"]) == (370.0, 426.0)
    assert [(r["node"], r["quarantines"]) for r in _q(history, "repeat_offenders")] == [("c", 2)]


def test_state_over_time_capacity_and_shadow_precision(history: Store) -> None:
    states = {r["state"]: r["nodes"] for r in _q(history, "nodes_by_state", bucket_s=3600)}
    assert states == {"Healthy": 2, "Escalated": 1, "Quarantined": 3}
    cap = {r["pool"]: (r["removed_gpus"], r["pool_gpus"]) for r in _q(history, "capacity_removed")}
    assert cap == {"p1": (0, 32), "p2": (4, 8)}  # d, e are shadow quarantines: nothing removed
    [sp] = _q(history, "shadow_precision")
    assert (sp["failure_class"], sp["confirmed"], sp["cleared"], sp["precision"]) == (
        "thermal_power",
        1,
        1,
        0.5,
    )


def test_report_precision_judges_each_quarantine_by_what_confirmed_it(history: Store) -> None:
    """The report's per-class precision panel counts a quarantine false only when its first check came
    back clean before any repair ran; a clean validation after a repair is no verdict."""
    from breakfix.report import sql as report_sql

    rows = history.query(report_sql.PRECISION.replace("$db", history.database), {"since": T0}).dicts()
    got = {(r["failure_class"], r["mode"]): (r["quarantines"], r["confirmed"], r["cleared"], r["unvalidated"])
           for r in rows}  # fmt: skip
    assert got == {
        ("gpu_hardware", "auto"): (4, 0, 0, 4),  # a and c repaired then validated clean, c again, f
        ("gpu_memory", "auto"): (1, 1, 0, 0),  # b's validation failed
        ("thermal_power", "shadow"): (2, 1, 1, 0),  # d's check failed, e's came back clean unrepaired
    }
