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
    # A message that could make the product act, refused by its signature check (schemas.signing):
    UNSIGNED = "unsigned"
    MALFORMED_SEAL = "malformed_seal"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    WRONG_SIGNER = "wrong_signer"
    OUT_OF_SCOPE = "out_of_scope"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    FUTURE_DATED = "future_dated"
    FENCED = "fenced"
    REPLAYED = "replayed"
    UNSIGNED_REPLAY = "unsigned_replay"
    """A replay-marked lifecycle input on the live path without a seal: ``breakfix replay
    --into-kafka`` seals what it republishes, so an unsigned one was forged with the marker."""


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
