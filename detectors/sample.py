"""gpu.sample → evidence: counter deltas become rates, flags and throttle reasons become signals, and
temperatures feed the weak online models. The hot path: one call per node scrape."""

from __future__ import annotations

from detectors.catalog import Catalog, Signal
from detectors.emit import clear, observe
from detectors.models import Ewma
from detectors.state import DetectState, GpuCounters
from schemas.events import GpuSample
from schemas.evidence import Evidence

MODEL_Z = 4.0
MODEL_WEIGHT = 0.10


def _delta(new: int | None, old: int | None) -> int:
    """Counter increase; a counter that went backwards was reset (driver reload, reboot): no increase."""
    if new is None or old is None or new < old:
        return 0
    return new - old


def _rate_exceeds(sig: Signal, delta: int, dt: float) -> bool:
    if delta <= 0 or dt <= 0 or sig.threshold is None or sig.per_s is None:
        return False
    return delta * (sig.per_s / dt) >= sig.threshold


def detect_sample(st: DetectState, ev: GpuSample, cat: Catalog, now: float) -> list[Evidence]:
    out: list[Evidence] = []
    samples = cat.samples
    thermal_reasons = cat.throttle_thermal_reasons
    power_reasons = cat.throttle_power_reasons
    temp_sum = temp_max = power_sum = util_sum = 0.0
    n_temp = n_power = n_util = 0

    def note(key: str, gpu: int, detail: str, weight: float | None = None, model: bool = False) -> None:
        e = observe(
            st,
            key,
            samples[key] if not model else samples["temp_high"],
            gpu,
            ev.id,
            ev.source,
            ev.time,
            now,
            detail=detail,
            weight=weight,
            model=model,
        )
        if e is not None:
            out.append(e)

    for g in ev.data.gpus:
        i = g.index
        prev = st.counters.get(i)
        if prev is not None:
            dt = now - prev.time
            if _delta(g.dbe_volatile, prev.dbe) > 0:
                note("dbe", i, f"volatile DBE count rose to {g.dbe_volatile}")
            d = _delta(g.sbe_volatile, prev.sbe)
            if _rate_exceeds(samples["sbe_rate"], d, dt):
                note("sbe_rate", i, f"{d} SBEs in {dt:.0f}s")
            d = _delta(g.pcie_replay, prev.pcie)
            if _rate_exceeds(samples["pcie_replay_rate"], d, dt):
                note("pcie_replay_rate", i, f"{d} PCIe replays in {dt:.0f}s")
            d = _delta(g.nvlink_crc_errors, prev.nvlink)
            if _rate_exceeds(samples["nvlink_crc_rate"], d, dt):
                note("nvlink_crc_rate", i, f"{d} NVLink CRC errors in {dt:.0f}s")
        st.counters[i] = GpuCounters(now, g.sbe_volatile, g.dbe_volatile, g.pcie_replay, g.nvlink_crc_errors)
        if g.row_remap_failure:
            note("row_remap_failure", i, "row remapping failed: the GPU has run out of spare rows")
        if g.row_remap_pending:
            note("row_remap_pending", i, "row remap pending: a GPU reset applies it")
        elif g.row_remap_pending is False and ("gpu_memory", i, "row_remap_pending") in st.slots:
            clear(st, "gpu_memory", i, "row_remap_pending")
        if g.throttle_reasons:
            reasons = g.throttle_reasons
            hit = [r for r in reasons if r in thermal_reasons]
            if hit:
                note("throttle_thermal", i, f"clock events: {', '.join(hit)}")
            hit = [r for r in reasons if r in power_reasons]
            if hit:
                note("throttle_power", i, f"clock events: {', '.join(hit)}")
        t = g.temp_c
        if t is not None:
            n_temp += 1
            temp_sum += t
            temp_max = max(temp_max, t)
            thr = samples["temp_high"].threshold
            if thr is not None and t >= thr:
                note("temp_high", i, f"{t:.0f} C at or above {thr:.0f} C")
            m = st.temp_models.get(i)
            if m is None:
                m = st.temp_models[i] = Ewma()
            z = m.update(t)
            if z >= MODEL_Z:
                note(
                    "model.temp_z",
                    i,
                    f"temperature {t:.0f} C is {z:.1f} sd above this GPU's baseline",
                    weight=MODEL_WEIGHT,
                    model=True,
                )
        if g.power_w is not None:
            n_power += 1
            power_sum += g.power_w
        if g.util is not None:
            n_util += 1
            util_sum += g.util
    if n_temp:
        score = st.window_model.add(
            temp_sum / n_temp, temp_max, power_sum / max(n_power, 1), util_sum / max(n_util, 1)
        )
        if score is not None and score >= 0.95:
            e = observe(
                st,
                "model.window",
                samples["temp_high"],
                None,
                ev.id,
                ev.source,
                ev.time,
                now,
                detail=f"node window anomaly score {score:.2f}",
                weight=MODEL_WEIGHT,
                model=True,
            )
            if e is not None:
                out.append(e)
    return out
