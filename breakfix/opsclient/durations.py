"""Durations like ``90s``, ``15m``, ``1h``, ``7d`` wherever a time is asked for (``--since 1h``).

One reading for every surface: the CLI and the MCP tools turn a duration into "that long before now"
before the call, so the API keeps one wire format (RFC 3339) and an exact time still works as is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta | None:
    """``1h`` -> one hour; None when ``text`` is not a duration.

    >>> parse_duration("90m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("2026-01-05T00:00:00Z") is None
    True
    """
    m = _DURATION.match(text)
    return timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)]) if m else None


def since_param(text: str | None, now: datetime | None = None) -> str | None:
    """A ``since`` value for the API: a duration becomes the RFC 3339 time that long ago.

    >>> since_param("1h", datetime(2026, 1, 5, 12, tzinfo=UTC))
    '2026-01-05T11:00:00+00:00'
    >>> since_param("2026-01-05T00:00:00Z")
    '2026-01-05T00:00:00Z'
    """
    if text is None:
        return None
    span = parse_duration(text)
    if span is None:
        return text
    return ((now or datetime.now(UTC)) - span).isoformat()
