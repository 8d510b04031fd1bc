"""Row mapping is pure: every contract model maps to a row matching its table's columns, bad input
becomes a dead-letter row (never an exception), and the spool round-trips records byte for byte."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import orjson
import pytest

from schemas.actions import ActionRequest
from schemas.audit import AuditRecord
from schemas.common import FailureDomain, NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.decision import ActionKind, Decision, GuardCheck, Mode
from schemas.evidence import Evidence
from schemas.parse import validate_event_dict
from store.rows import COLUMNS, dead_letter_id, model_rows, rows_for_message
from store.spool import Chunk, Spool, SpoolFull, decode, encode

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _decision() -> Decision:
    return Decision(
        id="d1", time=T, node="n1", from_state=NodeState.SUSPECT, to_state=NodeState.QUARANTINED,
        trigger="evidence", failure_class="gpu_hardware", confidence=0.93, action=ActionKind.DRAIN,
        mode=Mode.AUTO, executable=True, reasons=["xid 79"], evidence=["e1", "e2"],
        guard=[
            GuardCheck(name="headroom", passed=True, figures={"pool_healthy": 0.97, "min": 0.9}),
            GuardCheck(name="rack_concurrency", passed=False, figures={"in_flight": 1}, detail="busy"),
        ],
        policy_version="p-7",
    )  # fmt: skip


MODELS = [
    _decision(),
    Evidence(id="ev1", node="n1", gpu=3, domain=FailureDomain.GPU_HARDWARE, signal="xid79", weight=1.0,
             source="kernel", time=T, event_ids=["e1"], decisive=True),
    ActionRequest(id="d1:drain", decision_id="d1", node="n1", action="drain", playbook="drain-node",
                  playbook_version="3", step="cordon", time=T, params={"pre_state": "Quarantined"}),
    AuditRecord(id="a1", time=T, actor="alice", role="operator", initiator="human", surface="cli",
                action="approve", target="decision:d1", allowed=True, status=200),
    DeadLetter(reason=DeadLetterReason.MALFORMED_JSON, message="bad", raw="{nope", source="f.jsonl:3"),
]  # fmt: skip


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_every_model_maps_to_a_row_of_its_table_width(model: object) -> None:
    out = model_rows(model, T)  # type: ignore[arg-type]
    assert out
    for table, row in out:
        assert len(row) == len(COLUMNS[table]), table


def test_decision_keeps_guard_figures_as_json_and_names_failed_checks() -> None:
    [(table, row)] = model_rows(_decision())
    r = dict(zip(COLUMNS[table], row, strict=True))
    guard = orjson.loads(r["guard"])
    assert guard[0]["figures"] == {"pool_healthy": 0.97, "min": 0.9}
    assert r["guard_failed"] == ["rack_concurrency"]
    assert r["time"] == T and r["mode"] == "auto" and r["evidence"] == ["e1", "e2"]


def test_action_result_event_also_lands_in_actions() -> None:
    ev = validate_event_dict({
        "id": "r1", "type": "action.result", "source": "actuator", "time": "2025-03-01T12:00:00+01:00",
        "node": "n1", "data": {"decision_id": "d1", "action": "validate", "status": "succeeded",
                               "validation": "passed", "post_state": "Healthy"},
    })  # fmt: skip
    out = dict(model_rows(ev))
    assert set(out) == {"events", "actions"}
    act = dict(zip(COLUMNS["actions"], out["actions"], strict=True))
    assert act["validation"] == "passed" and act["post_state"] == "Healthy" and act["kind"] == "result"
    assert act["time"] == datetime(2025, 3, 1, 11, 0, tzinfo=UTC)


def test_control_message_is_both_a_lever_and_an_audit_record() -> None:
    c = ControlMessage(id="c1", time=T, kind=ControlKind.KILLSWITCH, scope="pool:a", value={"on": True},
                       actor="bob")  # fmt: skip
    assert [t for t, _ in model_rows(c)] == ["control", "audit"]


@pytest.mark.parametrize(
    "topic,raw",
    [
        ("breakfix.events", b"{not json"),
        ("breakfix.events", b'{"id": "x", "type": "gpu.xid", "time": "yesterday"}'),
        ("breakfix.events", b'{"id": "x", "type": "gpu.xid", "time": "2025-01-01T00:00:00"}'),
        ("breakfix.events", b"[1, 2]"),
        ("breakfix.decisions", b'{"id": "d"}'),
        ("breakfix.unknown", b"{}"),
    ],
)
def test_bad_input_becomes_a_dead_letter_row_not_an_exception(topic: str, raw: bytes) -> None:
    [(table, row)] = rows_for_message(topic, raw, f"{topic}/0@5", T)
    r = dict(zip(COLUMNS[table], row, strict=True))
    assert table == "dead_letters" and r["reason"] == "sink_rejected"
    assert r["source"] == f"{topic}/0@5" and r["raw"] == raw.decode()


def test_event_json_maps_without_a_pydantic_parse_and_keeps_data() -> None:
    raw = orjson.dumps({"id": "e9", "type": "gpu.xid", "source": "dcgm", "time": "2025-03-01T12:00:00Z",
                        "node": "n1", "data": {"gpu": 1, "xid": 79}})  # fmt: skip
    [(table, row)] = rows_for_message("breakfix.events", raw, "s", T)
    r = dict(zip(COLUMNS[table], row, strict=True))
    assert (table, r["id"], r["type"], r["time"]) == ("events", "e9", "gpu.xid", T)
    assert orjson.loads(r["data"]) == {"gpu": 1, "xid": 79}


def test_dead_letter_ids_are_deterministic() -> None:
    dl = MODELS[-1]
    assert isinstance(dl, DeadLetter)
    assert dead_letter_id(dl) == dead_letter_id(DeadLetter.model_validate(dl.model_dump()))
    assert dead_letter_id(dl) != dead_letter_id(dl.model_copy(update={"source": "f.jsonl:4"}))


def _chunks() -> list[Chunk]:
    return [
        Chunk("breakfix.events", "x.breakfix.events", p, list(range(p, p + 50)),
              [1_700_000_000_000 + i for i in range(50)], [bytes([i]) * i for i in range(50)])
        for p in range(3)
    ] + [Chunk("breakfix.decisions", "breakfix.decisions", 0, [7], [1], [b""])]  # fmt: skip


def test_spool_round_trips_and_refuses_past_its_bound(tmp_path: object) -> None:
    chunks = _chunks()
    assert decode(encode(chunks)) == chunks
    spool = Spool(tmp_path, max_bytes=len(encode(chunks)) + 10)  # type: ignore[arg-type]
    path = spool.put(chunks)
    assert spool.load(path) == chunks
    with pytest.raises(SpoolFull):
        spool.put(chunks)
    reopened = Spool(tmp_path)  # type: ignore[arg-type]
    assert reopened.files() == [path]
    assert reopened.put(chunks[:1]).name > path.name


def test_spool_files_written_before_chunks_still_drain() -> None:
    """A spool left by the previous sink (one header per record) decodes into the same chunks."""
    chunk = _chunks()[1]
    legacy = b"".join(
        struct.pack(">HHqI", len(chunk.name), len(src), ts, len(v)) + chunk.name.encode() + src + v
        for src, ts, v in zip(
            (s.encode() for s in chunk.sources()), chunk.timestamps, chunk.values, strict=True
        )
    )
    assert decode(legacy) == [chunk]
