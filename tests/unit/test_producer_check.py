"""The validating producer's check: whatever a collector hands it comes back as an event or a dead
letter, never as an exception that stops the collector."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import Envelope
from streams.kafka.producer import build_event, check


def _event(value: Any) -> dict[str, Any]:
    return build_event("gpu.xid", "kmsg", "gpu01", {"gpu": 0, "xid": 79, "pid": value}, event_id="t-1")


def test_a_valid_event_passes() -> None:
    assert isinstance(check(_event(4242)), Envelope)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30])
def test_an_integer_json_cannot_carry_is_a_dead_letter_not_an_exception(value: int) -> None:
    """orjson refuses integers outside 64 bits; a counter read back as garbage must not stop the
    collector: it is refused as an invalid value and the reason names why."""
    out = check(_event(value), "kmsg:gpu01")
    assert isinstance(out, DeadLetter)
    assert out.reason is DeadLetterReason.INVALID_VALUE
    assert "not encodable as JSON" in out.message and out.source == "kmsg:gpu01"
    assert str(value) in out.raw


def test_a_map_with_non_string_keys_is_a_dead_letter() -> None:
    doc = _event(4242)
    doc["data"] = {0: "gpu"}
    out = check(doc)
    assert isinstance(out, DeadLetter) and out.reason is DeadLetterReason.INVALID_VALUE
