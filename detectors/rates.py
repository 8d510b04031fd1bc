"""Counter increases judged as rates over a window, against the fleet's and the GPU's own baseline.

A healthy fleet's GPUs log the odd corrected ECC error and PCIe replay every day (large-fleet studies
such as ORNL Titan's report most cards with a handful of single-bit errors over months and a few
cards with many). One increase between two scrapes is therefore never a rate: extrapolating "1 SBE in
15 s" to 240 an hour put most of a healthy fleet in Suspect. A counter is judged instead by how many
increases a sliding window of the catalog's ``per_s`` holds:

- at or above the catalog's ``threshold`` (the fleet baseline: what a healthy GPU of the fleet does not
  reach in that window), the rate is sustained;
- at or above ``ACCEL_SHARE`` of it and ``ACCEL_FACTOR`` times this GPU's own learned window count, the
  rate is accelerating on a GPU that is normally quiet.

The window is the classic two-bucket sliding count (current bucket plus the unexpired share of the
previous one): four numbers per counter, updated only when the counter rose.

>>> w = RateWindow.new(0.0)
>>> [w.add(1, t, 3600.0) for t in (10.0, 900.0, 1800.0)]
[1.0, 2.0, 3.0]
>>> fires(w.add(1, 2000.0, 3600.0), w, 100.0)
False
"""

from __future__ import annotations

from dataclasses import dataclass

ACCEL_SHARE = 0.25
"""An accelerating rate must reach this share of the fleet threshold: a GPU's own baseline lowers the
bar for that GPU, never below a quarter of the fleet's."""
ACCEL_FACTOR = 8.0
"""... and this many times the GPU's own learned count per window."""
BASELINE_ALPHA = 0.05
"""Per closed window: the GPU's baseline learns over ~20 windows (a day for hourly SBE windows)."""


@dataclass(slots=True)
class RateWindow:
    start: float
    cur: float
    prev: float
    base: float

    @staticmethod
    def new(now: float) -> RateWindow:
        return RateWindow(now, 0.0, 0.0, 0.0)

    @staticmethod
    def of(t: tuple[float, float, float, float]) -> RateWindow:
        return RateWindow(*t)

    def state(self) -> tuple[float, float, float, float]:
        return (self.start, self.cur, self.prev, self.base)

    def add(self, delta: int, now: float, window_s: float) -> float:
        """Count ``delta`` increases at ``now``; the sliding count over the last ``window_s``."""
        age = now - self.start
        if age >= window_s:
            closed = self.cur
            # Windows that passed with no increase at all teach the baseline zeros.
            empty = min(int(age // window_s) - 1, 64)
            self.base += BASELINE_ALPHA * (closed - self.base)
            for _ in range(empty):
                self.base *= 1.0 - BASELINE_ALPHA
            self.prev = closed if age < 2 * window_s else 0.0
            self.start = now - age % window_s
            self.cur = 0.0
        self.cur += delta
        left = max(0.0, 1.0 - (now - self.start) / window_s)
        return self.cur + self.prev * left


def fires(count: float, w: RateWindow, threshold: float) -> bool:
    """Sustained (the fleet threshold) or accelerating (a quarter of it and well above this GPU's own)."""
    if count >= threshold:
        return True
    return count >= ACCEL_SHARE * threshold and count >= ACCEL_FACTOR * max(w.base, 1.0)
