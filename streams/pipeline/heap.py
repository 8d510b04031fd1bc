"""Keeping CPython's cyclic garbage collector off a worker's latency path.

Why: a node's state holds ~250 container objects (most of them the nodes of its river half-space
trees), so a worker holding 5,000 nodes has ~1.3 M objects the collector tracks. CPython runs a full
collection whenever the objects that survived into the oldest generation since the last one pass a
quarter of those there, and a full collection walks all of them: 0.67 s here for 5,000 nodes after 60
samples each (1.27 M objects; 0.10 s after 20 samples, before most models are built). At 5x a
10,000-node fleet's rate that stalls a worker's event loop for most of a second every so often, and
the guard, which waits for every partition's progress, inherits every stall.

The remedy: every ``freeze_s`` the young generations are collected (a few milliseconds) and everything
alive is moved to the permanent generation (``gc.freeze``: no copying), which collections skip, so an
automatic full collection only walks what was made since. The trees do not form reference cycles, so
frozen objects that are dropped later are still freed at once by reference counting; only cyclic
garbage among them waits, for the full collection this runs every ``full_s`` (unfreeze, collect,
freeze: the one long pause, at a time of this module's choosing, once an hour by default).
"""

from __future__ import annotations

import gc
import logging
import time

from prometheus_client import Counter

log = logging.getLogger(__name__)

FULL_PAUSE = Counter("breakfix_gc_full_pause_seconds", "Seconds spent in scheduled full collections")
FULL_RUNS = Counter("breakfix_gc_full_total", "Scheduled full collections")
FREED = Counter("breakfix_gc_full_freed_objects_total", "Objects in cycles scheduled collections freed")


class HeapKeeper:
    """Freezes the long-lived heap every ``freeze_s`` and fully collects it every ``full_s`` (seconds
    of the wall clock handed to :meth:`tick`)."""

    def __init__(self, freeze_s: float, full_s: float, now: float) -> None:
        self.freeze_s = freeze_s
        self.full_s = full_s
        self.frozen_at = -float("inf")
        self.full_at = now

    def tick(self, now: float) -> float | None:
        """Do what is due; returns the seconds a full collection took when one ran."""
        if now - self.full_at >= self.full_s:
            self.full_at = self.frozen_at = now
            return self._full()
        if now - self.frozen_at >= self.freeze_s:
            self.frozen_at = now
            gc.collect(1)
            gc.freeze()
        return None

    def _full(self) -> float:
        start = time.perf_counter()
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        took = time.perf_counter() - start
        FULL_PAUSE.inc(took)
        FULL_RUNS.inc()
        FREED.inc(freed)
        log.info("full garbage collection: %.3f s, %d objects in cycles freed, %d kept", took, freed,
                 gc.get_freeze_count())  # fmt: skip
        return took
