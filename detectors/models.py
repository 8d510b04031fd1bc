"""Online models: weak evidence only. Per-GPU robust EWMA z-scores and a river HalfSpaceTrees over
per-node window features. Their output is capped by policy so they can tilt, never decide."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from river.anomaly import HalfSpaceTrees


@dataclass(slots=True)
class Ewma:
    """Exponentially weighted mean/variance with a warm-up; z-scores clipped against outliers."""

    alpha: float = 0.05
    n: int = 0
    mean: float = 0.0
    var: float = 0.0

    def update(self, x: float) -> float:
        """Return the z-score of ``x`` against the history *before* it, then learn it."""
        if self.n == 0:
            self.mean, self.n = x, 1
            return 0.0
        sd = math.sqrt(self.var) if self.var > 1e-9 else 1.0
        z = (x - self.mean) / max(sd, 0.5)
        # Winsorise what we learn so one spike does not drag the baseline.
        xc = self.mean + max(-3.0, min(3.0, z)) * max(sd, 0.5)
        d = xc - self.mean
        self.mean += self.alpha * d
        self.var = (1 - self.alpha) * (self.var + self.alpha * d * d)
        self.n += 1
        return z if self.n > 20 else 0.0


WINDOW = 40
"""Samples per window for the river model (10 minutes at a 15 s scrape): amortises its cost."""


@dataclass
class NodeWindowModel:
    """HalfSpaceTrees over per-node window features scaled to [0, 1] by fixed physical ranges."""

    model: HalfSpaceTrees = field(
        default_factory=lambda: HalfSpaceTrees(n_trees=4, height=4, window_size=50, seed=7)
    )
    windows: int = 0
    acc_n: int = 0
    acc_temp: float = 0.0
    acc_temp_max: float = 0.0
    acc_power: float = 0.0
    acc_util: float = 0.0

    def add(self, temp_mean: float, temp_max: float, power_mean: float, util_mean: float) -> float | None:
        """Accumulate one scrape; at a window's end return its anomaly score (after warm-up)."""
        self.acc_n += 1
        self.acc_temp += temp_mean
        self.acc_temp_max = max(self.acc_temp_max, temp_max)
        self.acc_power += power_mean
        self.acc_util += util_mean
        if self.acc_n < WINDOW:
            return None
        n = self.acc_n
        x = {
            "temp": min(1.0, self.acc_temp / n / 120.0),
            "temp_max": min(1.0, self.acc_temp_max / 120.0),
            "power": min(1.0, self.acc_power / n / 1200.0),
            "util": min(1.0, self.acc_util / n / 100.0),
        }
        self.acc_n, self.acc_temp, self.acc_temp_max, self.acc_power, self.acc_util = 0, 0.0, 0.0, 0.0, 0.0
        score = float(self.model.score_one(x))  # type: ignore[no-untyped-call]
        self.model.learn_one(x)  # type: ignore[no-untyped-call]
        self.windows += 1
        return score if self.windows > 30 else None
