"""What every contract shares: the schema version, bounded numbers and identifiers, event time.

The words (node states, failure domains and classes, triggers, scopes) live in :mod:`schemas.vocab`;
``NodeState`` and ``FailureDomain`` are re-exported here for the contracts that import them with these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

from schemas.vocab import FailureDomain as FailureDomain
from schemas.vocab import NodeState as NodeState

# Bumped only for a breaking change (a field removed, renamed or retyped). Additive changes
# (new optional fields, new event types) keep the version; consumers must ignore what they do not know.
SCHEMA_VERSION = 1

# Physical and sanity bounds. A value outside them is "absurd" (dead-lettered as absurd_value),
# distinct from a value of the wrong type ("invalid_value").
MAX_GPUS_PER_NODE = 64
MAX_COUNTER = 10**15
MAX_TEXT = 16_384

NodeId = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]
GpuIndex = Annotated[int, Field(ge=0, lt=MAX_GPUS_PER_NODE)]
Counter = Annotated[int, Field(ge=0, le=MAX_COUNTER)]
ShortText = Annotated[str, Field(max_length=1024)]
LongText = Annotated[str, Field(max_length=MAX_TEXT)]
EventTime = AwareDatetime
"""Event time: RFC 3339 with an explicit offset. Naive timestamps are refused (invalid_value)."""


def epoch(t: datetime) -> float:
    """Seconds since the epoch; the pure core computes with floats, not datetimes, on its hot path."""
    return t.timestamp()
