"""gpu.sample → evidence: counter increases become windowed rates (``detectors.rates``), flags and
throttle reasons become signals, and temperatures feed the weak online models. The hot path: one call
per node scrape, so the common case (counters unchanged, no flags, temperature inside its baseline)
costs a few attribute reads per GPU.

Thermal readings are judged on persistence: one scrape at or above the temperature threshold, or one
thermal clock event, is a blip every fleet sees daily; the same reading on two consecutive scrapes of
the GPU is evidence."""

from __future__ import annotations

from typing import Any

from detectors.catalog import Catalog
from detectors.emit import clear, clear_recovery, observe
from detectors.models import LEARN_EVERY, WARM_UP, Ewma
from detectors.rates import RateWindow, fires
from detectors.state import DetectState, GpuCounters
from schemas.events import GpuReading, GpuSample
from schemas.evidence import Evidence

MODEL_Z = 4.0
MODEL_WEIGHT = 0.10
_HOT_TEMP, _HOT_THROTTLE, _HOT_POWER = 1, 2, 4
"""Bits of a GPU's thermal readings on its previous scrape (``GpuCounters``' last field)."""
_NO_WINDOWS: tuple[None, None, None] = (None, None, None)
_RATES = (
    (0, "sbe_rate", "SBEs"),
    (2, "pcie_replay_rate", "PCIe replays"),
    (3, "nvlink_crc_rate", "NVLink CRC errors"),
)


def _windows(prev: GpuCounters) -> tuple[Any, ...]:
    """The rate windows remembered for a GPU (records written before windows existed have none)."""
    return prev[2] if len(prev) > 2 else _NO_WINDOWS


def _delta(new: int | None, old: int | None) -> int:
    """Counter increase; a counter that went backwards was reset (driver reload, reboot): no increase."""
    if new is None or old is None or new < old:
        return 0
    return new - old


def _unchanged(cur: tuple[int | None, ...], old: tuple[int | None, ...]) -> bool:
    """No counter moved: each reading equals the last one or is absent from this scrape (the slow
    health counters come once a minute). The common case, so :meth:`_Scrape.counters` is skipped: the
    readings to remember are then ``old`` itself."""
    s, d, p, n = cur
    return (
        (s is None or s == old[0])
        and (d is None or d == old[1])
        and (p is None or p == old[2])
        and (n is None or n == old[3])
    )


class _Scrape:
    """One scrape's context: turns a signal key into an observation and collects the evidence."""

    __slots__ = ("cat", "ev", "now", "out", "st")

    def __init__(self, st: DetectState, ev: GpuSample, cat: Catalog, now: float) -> None:
        self.st, self.ev, self.cat, self.now = st, ev, cat, now
        self.out: list[Evidence] = []

    def note(
        self, key: str, gpu: int | None, detail: str, sig_key: str | None = None, w: float | None = None
    ) -> None:
        ev = self.ev
        e = observe(
            self.st,
            key,
            self.cat.samples[sig_key or key],
            gpu,
            ev.id,
            ev.source,
            ev.time,
            self.now,
            detail=detail,
            weight=w,
            model=sig_key is not None,
        )
        if e is not None:
            self.out.append(e)

    def counters(self, i: int, prev: GpuCounters | None, cur: tuple[int | None, ...]) -> tuple[Any, ...]:
        """Increases of the counters read in this scrape and before (a counter absent from a scrape
        keeps its last reading); rate counters feed their windows. Returns the readings and windows
        to remember."""
        if prev is None:
            return cur, (None, None, None)
        old = prev[1]
        known = tuple(c if c is not None else o for c, o in zip(cur, old, strict=True))
        if known == old:
            return known, _windows(prev)
        if _delta(cur[1], old[1]) > 0:
            self.note("dbe", i, f"volatile DBE count rose to {cur[1]}")
        wins = list(_windows(prev))
        for n, (pos, key, what) in enumerate(_RATES):
            d = _delta(cur[pos], old[pos])
            if d <= 0:
                continue
            sig = self.cat.samples[key]
            if sig.threshold is None or sig.per_s is None:
                continue
            w = RateWindow.new(self.now) if wins[n] is None else RateWindow.of(wins[n])
            count = w.add(d, self.now, sig.per_s)
            wins[n] = w.state()
            if fires(count, w, sig.threshold):
                self.note(key, i, f"{count:.0f} {what} in the last {sig.per_s:.0f}s (+{d} this scrape)")
        return known, tuple(wins)

    def flags(self, g: GpuReading, was_hot: int) -> int:
        """Row-remap flags act at once; thermal clock events only when the previous scrape had them too.
        Returns this scrape's thermal bits."""
        i = g.index
        hot = 0
        if g.row_remap_failure:
            self.note("row_remap_failure", i, "row remapping failed: the GPU has run out of spare rows")
        if g.row_remap_pending:
            self.note("row_remap_pending", i, "row remap pending: a GPU reset applies it")
        action = g.recovery_action
        if action and action != "none" and f"recovery_{action}" in self.cat.samples:
            self.note(f"recovery_{action}", i, f"the driver recommends recovery action {action}")
        if g.throttle_reasons:
            hit = [r for r in g.throttle_reasons if r in self.cat.throttle_thermal_reasons]
            if hit:
                hot |= _HOT_THROTTLE
                if was_hot & _HOT_THROTTLE:
                    self.note("throttle_thermal", i, f"clock events on consecutive scrapes: {', '.join(hit)}")
            hit = [r for r in g.throttle_reasons if r in self.cat.throttle_power_reasons]
            if hit:
                hot |= _HOT_POWER
                if was_hot & _HOT_POWER:
                    self.note("throttle_power", i, f"clock events on consecutive scrapes: {', '.join(hit)}")
        return hot


def detect_sample(st: DetectState, ev: GpuSample, cat: Catalog, now: float) -> list[Evidence]:
    scrape = _Scrape(st, ev, cat, now)
    counters, models, slots = st.counters, st.temp_models, st.slots
    temp_thr = cat.samples["temp_high"].threshold
    learn = st.scrapes % LEARN_EVERY == 0
    st.scrapes += 1
    gpus = ev.data.gpus
    for g in gpus:
        i = g.index
        cur = (g.sbe_volatile, g.dbe_volatile, g.pcie_replay, g.nvlink_crc_errors)
        prev = counters.get(i)
        was_hot = prev[3] if prev is not None and len(prev) > 3 else 0
        if prev is not None and _unchanged(cur, prev[1]):
            known, wins = prev[1], _windows(prev)
        else:
            known, wins = scrape.counters(i, prev, cur)
        hot = 0
        if g.row_remap_failure or g.row_remap_pending or g.throttle_reasons or g.recovery_action:
            hot = scrape.flags(g, was_hot)
        if g.recovery_action == "none" and slots:
            clear_recovery(st, cat, i)
        if g.row_remap_pending is False and slots and ("gpu_memory", i, "row_remap_pending") in slots:
            clear(st, "gpu_memory", i, "row_remap_pending")
        t = g.temp_c
        if t is not None and temp_thr is not None and t >= temp_thr:
            hot |= _HOT_TEMP
            if was_hot & _HOT_TEMP:
                scrape.note("temp_high", i, f"{t:.0f} C at or above {temp_thr:.0f} C on consecutive scrapes")
        counters[i] = (now, known, wins, hot)
        if t is None:
            continue
        m = models.get(i)
        if m is None:
            m = models[i] = Ewma()
        if m.n >= WARM_UP and t - m.mean >= MODEL_Z * m.sd:  # m.z(t) >= MODEL_Z, inlined: per GPU
            z = m.z(t)
            detail = f"temperature {t:.0f} C is {z:.1f} sd above this GPU's baseline"
            scrape.note("model.temp_z", i, detail, "temp_high", MODEL_WEIGHT)
        if learn:
            m.learn(t)
    if learn:
        _window(scrape, gpus)
    return scrape.out


def _window(scrape: _Scrape, gpus: list[GpuReading]) -> None:
    """Feed the node's river model one learned scrape (a subsample: see ``LEARN_EVERY``)."""
    temps = [g.temp_c for g in gpus if g.temp_c is not None]
    if not temps:
        return
    powers = [g.power_w for g in gpus if g.power_w is not None]
    utils = [g.util for g in gpus if g.util is not None]
    score = scrape.st.window_model.add(
        sum(temps) / len(temps),
        max(temps),
        sum(powers) / max(len(powers), 1),
        sum(utils) / max(len(utils), 1),
    )
    if score is not None and score >= 0.95:
        scrape.note("model.window", None, f"node window anomaly score {score:.2f}", "temp_high", MODEL_WEIGHT)
