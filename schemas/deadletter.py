"""Dead letters: bad input is kept with its raw bytes and a reason, counted, and never acted on."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class DeadLetterReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    ABSURD_VALUE = "absurd_value"
    UNKNOWN_NODE = "unknown_node"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    FAR_FUTURE = "far_future"
    STALE = "stale"


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: DeadLetterReason
    message: str
    raw: str
    """The payload as received (decoded as UTF-8 with replacement), so nothing is lost."""
    event_id: str | None = None
    event_type: str | None = None
    node: str | None = None
    source: str = ""
    """Where it came from: ``file:line`` for recordings, ``topic/partition@offset`` for Kafka."""
