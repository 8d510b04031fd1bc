"""Refusals of callers without a valid token: counted every time, audited at most once a minute.

Writing an audit row per anonymous request let anyone on the network grow the audit store as fast
as they could send requests. Each refusal still counts in ``breakfix_api_anonymous_failures_total``
(by reason, for alerting), and the audit log gets one summary line per ``interval_s`` in which
there were any: how many, why, and the last one's method and path.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

FAILURES = Counter(
    "breakfix_api_anonymous_failures_total",
    "API requests refused before a caller was known (no or unknown token, body too large)",
    ["reason"],
)


@dataclass(frozen=True)
class Summary:
    """What one rate-limited audit line says."""

    count: int
    reasons: dict[str, int]
    last: str

    def detail(self) -> str:
        why = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items()))
        return f"{self.count} request(s) refused without a known caller ({why}); last: {self.last}"


class AnonymousFailures:
    """Thread-safe: the middleware notes refusals from the event loop and the audit from threads."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: Tally[str] = Tally()
        self._last_line = -float("inf")

    def note(self, reason: str, method: str, path: str) -> Summary | None:
        """Count one refusal; a :class:`Summary` to audit when the interval since the last line has
        passed, else None (the refusal is kept for the next line)."""
        FAILURES.labels(reason=reason).inc()
        with self._lock:
            self._pending[reason] += 1
            now = self.clock()
            if now - self._last_line < self.interval_s:
                return None
            self._last_line = now
            summary = Summary(sum(self._pending.values()), dict(self._pending), f"{method} {path[:200]}")
            self._pending.clear()
            return summary
