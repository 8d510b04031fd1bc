"""Simulated time: integer epoch seconds inside the simulator, RFC 3339 strings on the wire.

Formatting a timestamp per event is a measurable cost at six million events, so strings are cached
(times cluster within a 15 s tick, so the cache hit rate is high).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

DEFAULT_START = "2026-01-05T00:00:00Z"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


@lru_cache(maxsize=8192)
def rfc3339(t: int) -> str:
    """``1767571200`` → ``"2026-01-05T00:00:00Z"`` (UTC, explicit ``Z`` offset).

    >>> rfc3339(1767571200)
    '2026-01-05T00:00:00Z'
    """
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_start(text: str) -> int:
    """An RFC 3339 time with offset → epoch seconds. Naive times are refused: the contract needs one."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"start time {text!r} has no UTC offset")
    return int(dt.timestamp())


def parse_duration(text: str | int | float) -> float:
    """``"90m"`` → 5400.0; plain numbers are seconds.

    >>> parse_duration("1.5h"), parse_duration(30)
    (5400.0, 30.0)
    """
    if isinstance(text, int | float):
        return float(text)
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 2h, 1d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]
