"""Active evidence, kept per (domain, GPU, signal) slot so memory is bounded by the catalog's size.

A signal that repeats refreshes its slot (and grows its count) instead of piling up items; two
collectors reporting the same Xid land in the same slot, so one fact is never counted as two sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from schemas.common import FailureDomain

MAX_EVENT_IDS = 8
EXPIRED_BELOW = 0.02


@dataclass(slots=True)
class Slot:
    domain: FailureDomain
    gpu: int | None
    signal: str
    weight: float
    half_life_s: float | None
    decisive: bool
    action: str
    attribution: str
    source: str
    first_time: float
    last_time: float
    count: int = 1
    event_ids: list[str] = field(default_factory=list)
    detail: str = ""
    model: bool = False

    def effective(self, now: float, single_cap: float) -> float:
        """Decayed weight; repeats strengthen a signal (log of the count) up to the single-signal cap."""
        w = self.weight
        if self.count > 1 and not self.decisive:
            w = min(max(w, single_cap), w * (1.0 + 0.5 * math.log2(self.count)))
        if self.half_life_s is None:
            return w
        dt = now - self.last_time
        return w if dt <= 0 else w * 0.5 ** (dt / self.half_life_s)

    def expired(self, now: float) -> bool:
        """Decayed below ``EXPIRED_BELOW``. A weightless slot (an Xid NVIDIA says to ignore, kept for the
        audit trail) lasts one half-life after its last event, so a storm of them is one slot, not one
        new evidence item per line."""
        if self.half_life_s is None:
            return False
        if self.weight == 0:
            return now - self.last_time > self.half_life_s
        return self.effective(now, 1.0) < EXPIRED_BELOW

    def add_event(self, event_id: str) -> None:
        if len(self.event_ids) >= MAX_EVENT_IDS:
            del self.event_ids[1]  # keep the first (episode start) and the newest
        self.event_ids.append(event_id)


SlotKey = tuple[str, int | None, str]
