"""The single validation entry point: every bad-input class has its reason, and nothing raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import GpuXid
from schemas.parse import parse_event
from schemas.recording import Validator

INV = {
    "id": "i1",
    "type": "node.inventory",
    "source": "t",
    "time": "2026-11-23T10:00:00Z",
    "node": "n1",
    "data": {"pool": "p", "rack": "r", "sku": "H100", "gpus": 8},
}


def line(**kw: object) -> bytes:
    base = {
        "id": "x",
        "type": "gpu.xid",
        "source": "t",
        "time": "2026-11-23T10:00:01Z",
        "node": "n1",
        "data": {"gpu": 0, "xid": 79},
    }
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


CASES = [
    (b"{not json", DeadLetterReason.MALFORMED_JSON),
    (b"[1, 2]", DeadLetterReason.MALFORMED_JSON),
    (b"\xff\xfe", DeadLetterReason.MALFORMED_JSON),
    (line(type="gpu.smell"), DeadLetterReason.UNKNOWN_TYPE),
    (line(type=None), DeadLetterReason.MISSING_FIELD),
    (line(data={"gpu": 0}), DeadLetterReason.MISSING_FIELD),
    (line(time="2026-11-23T10:00:01"), DeadLetterReason.INVALID_VALUE),
    (line(data={"gpu": 0, "xid": "seventy-nine"}), DeadLetterReason.INVALID_VALUE),
    (line(type="gpu.sample", data={"gpus": [{"index": 0, "temp_c": 1e9}]}), DeadLetterReason.ABSURD_VALUE),
    (
        line(type="gpu.sample", data={"gpus": [{"index": 0, "sbe_volatile": -1}]}),
        DeadLetterReason.ABSURD_VALUE,
    ),
]


@pytest.mark.parametrize(("raw", "reason"), CASES)
def test_each_bad_input_class_has_its_reason(raw: bytes, reason: DeadLetterReason) -> None:
    out = parse_event(raw)
    assert isinstance(out, DeadLetter)
    assert out.reason is reason
    assert out.message


def test_context_classes_need_the_gate() -> None:
    v = Validator()
    assert not isinstance(v.validate(json.dumps(INV).encode()), DeadLetter)
    got = {
        "unknown_node": v.validate(line(id="a", node="n9")),
        "gpu_beyond_inventory": v.validate(line(id="b", data={"gpu": 8, "xid": 79})),
        "ok": v.validate(line(id="c")),
        "duplicate": v.validate(line(id="c")),
        "far_future": v.validate(line(id="d", time="2027-01-01T00:00:00Z")),
        "stale": v.validate(line(id="e", time="2026-11-20T00:00:00Z")),
    }
    assert isinstance(got["ok"], GpuXid)
    reasons = {k: getattr(x, "reason", None) for k, x in got.items()}
    assert reasons == {
        "unknown_node": DeadLetterReason.UNKNOWN_NODE,
        "gpu_beyond_inventory": DeadLetterReason.ABSURD_VALUE,
        "ok": None,
        "duplicate": DeadLetterReason.DUPLICATE,
        "far_future": DeadLetterReason.FAR_FUTURE,
        "stale": DeadLetterReason.STALE,
    }
    assert not isinstance(v.validate(line(id="f", time="2026-11-23T10:04:00Z")), DeadLetter)
    late = v.validate(line(id="g", time="2026-11-23T09:58:00Z"))
    assert isinstance(late, DeadLetter) and late.reason is DeadLetterReason.OUT_OF_ORDER
    assert v.stats.dead_letters["duplicate"] == 1


def test_extra_data_fields_are_kept() -> None:
    out = parse_event(line(data={"gpu": 1, "xid": 13, "job": "train-42", "uuid": "GPU-abc"}))
    assert isinstance(out, GpuXid)
    assert out.data.model_extra == {"job": "train-42", "uuid": "GPU-abc"}
    assert json.loads(out.model_dump_json())["data"]["job"] == "train-42"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_event(raw), DeadLetter)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(
        [
            "gpu.sample",
            "gpu.xid",
            "node.inventory",
            "node.condition",
            "workload.event",
            "change.event",
            "tenant.report",
            "repair.status",
            "scheduler.state",
        ]
    ),
    json_values,
)
def test_wrong_data_for_every_type_is_dead_lettered_not_raised(type_: str, data: object) -> None:
    out = parse_event(line(type=type_, data=data))
    assert isinstance(out, DeadLetter) or getattr(out, "type", None) == type_
