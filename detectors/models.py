"""Online models: weak evidence only. Per-GPU robust EWMA z-scores and a river HalfSpaceTrees over
per-node window features. Their output is capped by policy so they can tilt, never decide."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detectors import hst_pack

if TYPE_CHECKING:  # river (with scipy) takes about a second to import: only a node's first window needs it
    from river.anomaly import HalfSpaceTrees

LEARN_EVERY = 4
"""Models learn from every 4th scrape of a node (once a minute at a 15 s scrape): a baseline over
hours gains nothing from every reading, and this keeps per-scrape work to a comparison per GPU."""
SD_FLOOR = 0.5
WARM_UP = 8
"""Learned readings before a baseline may score (8 minutes at the default scrape)."""


@dataclass(slots=True)
class Ewma:
    """Exponentially weighted mean/variance; what it learns is winsorised against outliers.

    The standard deviation is kept alongside the variance (floored at ``SD_FLOOR``) so scoring a
    reading is a subtraction and a division, done once per GPU per scrape; learning is subsampled.
    """

    alpha: float = 0.185
    """Per learned reading: 0.185 every minute ≈ 0.05 every 15 s, a ~5-minute time constant."""
    n: int = 0
    mean: float = 0.0
    var: float = 0.0
    sd: float = 1.0

    def z(self, x: float) -> float:
        """How many baseline deviations ``x`` lies above the mean; 0 during warm-up."""
        return (x - self.mean) / self.sd if self.n >= WARM_UP else 0.0

    def learn(self, x: float) -> None:
        if self.n == 0:
            self.mean, self.n = x, 1
            return
        sd, mean = self.sd, self.mean
        d = x - mean
        # Winsorise what we learn so one spike does not drag the baseline.
        if d > 3.0 * sd:
            d = 3.0 * sd
        elif d < -3.0 * sd:
            d = -3.0 * sd
        a = self.alpha
        self.mean = mean + a * d
        var = (1 - a) * (self.var + a * d * d)
        self.var = var
        self.sd = max(math.sqrt(var), SD_FLOOR) if var > 1e-9 else 1.0
        self.n += 1


WINDOW = 10
"""Learned scrapes per window for the river model (10 minutes at one learned scrape a minute)."""


@dataclass
class NodeWindowModel:
    """HalfSpaceTrees over per-node window features scaled to [0, 1] by fixed physical ranges."""

    model: HalfSpaceTrees | None = None
    """Built at the end of the first window: a node that never completes one costs no trees."""
    packed: bytes | None = None
    """The model in its checkpoint form (``detectors.hst_pack``), kept until the model next learns: a
    node is checkpointed every few seconds, its model learns every ten minutes. After a restore only
    this is set, and the model is rebuilt from it when the next window ends."""
    windows: int = 0
    acc_n: int = 0
    acc_temp: float = 0.0
    acc_temp_max: float = 0.0
    acc_power: float = 0.0
    acc_util: float = 0.0

    def pack(self) -> bytes | None:
        """The model's checkpoint form; None before it exists."""
        if self.packed is None and self.model is not None:
            self.packed = hst_pack.pack(self.model)
        return self.packed

    def _live(self) -> HalfSpaceTrees:
        if self.model is None and self.packed is not None:
            self.model = hst_pack.unpack(self.packed)
        if self.model is None:
            self.model = hst_pack.new_model()
        return self.model

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
        model = self._live()
        score = float(model.score_one(x))  # type: ignore[no-untyped-call]
        model.learn_one(x)  # type: ignore[no-untyped-call]
        self.packed = None
        self.windows += 1
        return score if self.windows > 30 else None
