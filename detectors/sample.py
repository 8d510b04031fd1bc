"""gpu.sample → evidence: counter deltas become rates, flags and throttle reasons become signals, and
temperatures feed the weak online models. The hot path: one call per node scrape, so the common case
(counters unchanged, no flags, temperature inside its baseline) costs a few attribute reads per GPU."""

from __future__ import annotations

from detectors.catalog import Catalog, Signal
from detectors.emit import clear, observe
from detectors.models import LEARN_EVERY, WARM_UP, Ewma
from detectors.state import DetectState
from schemas.events import GpuReading, GpuSample
from schemas.evidence import Evidence

MODEL_Z = 4.0
MODEL_WEIGHT = 0.10
_NO_COUNTERS = (None, None, None, None)
_RATES = (
    (0, "sbe_rate", "SBEs"),
    (2, "pcie_replay_rate", "PCIe replays"),
    (3, "nvlink_crc_rate", "NVLink CRC errors"),
)


def _delta(new: int | None, old: int | None) -> int:
    """Counter increase; a counter that went backwards was reset (driver reload, reboot): no increase."""
    if new is None or old is None or new < old:
        return 0
    return new - old


def _rate_exceeds(sig: Signal, delta: int, dt: float) -> bool:
    if delta <= 0 or dt <= 0 or sig.threshold is None or sig.per_s is None:
        return False
    return delta * (sig.per_s / dt) >= sig.threshold


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

    def counters(self, i: int, prev: tuple[int | None, ...], cur: tuple[int | None, ...], dt: float) -> None:
        """Deltas of the counters read in both scrapes; one read only now (None before) is no delta."""
        if _delta(cur[1], prev[1]) > 0:
            self.note("dbe", i, f"volatile DBE count rose to {cur[1]}")
        for pos, key, what in _RATES:
            new, old = cur[pos], prev[pos]
            if new is None or old is None or new <= old:
                continue
            d = new - old
            if _rate_exceeds(self.cat.samples[key], d, dt):
                self.note(key, i, f"{d} {what} in {dt:.0f}s")

    def flags(self, g: GpuReading) -> None:
        i = g.index
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
                self.note("throttle_thermal", i, f"clock events: {', '.join(hit)}")
            hit = [r for r in g.throttle_reasons if r in self.cat.throttle_power_reasons]
            if hit:
                self.note("throttle_power", i, f"clock events: {', '.join(hit)}")


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
        if prev is not None and prev[1] != cur and cur != _NO_COUNTERS:
            scrape.counters(i, prev[1], cur, now - prev[0])
        counters[i] = (now, cur)
        if g.row_remap_failure or g.row_remap_pending or g.throttle_reasons or g.recovery_action:
            scrape.flags(g)
        if g.recovery_action == "none" and slots:
            _recovered(st, cat, i)
        if g.row_remap_pending is False and slots and ("gpu_memory", i, "row_remap_pending") in slots:
            clear(st, "gpu_memory", i, "row_remap_pending")
        t = g.temp_c
        if t is None:
            continue
        if temp_thr is not None and t >= temp_thr:
            scrape.note("temp_high", i, f"{t:.0f} C at or above {temp_thr:.0f} C")
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


def _recovered(st: DetectState, cat: Catalog, gpu: int) -> None:
    """The driver reads "none" again (after the reset or reboot): its recovery evidence is spent."""
    for key, sig in cat.samples.items():
        if key.startswith("recovery_"):
            clear(st, sig.domain.value, gpu, key)


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
