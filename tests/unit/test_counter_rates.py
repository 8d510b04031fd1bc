"""Counters judged as rates over a window against the fleet threshold and the GPU's own baseline: one
corrected error or one PCIe replay is never a reason to leave Healthy; a sustained or accelerating rate
is."""

from __future__ import annotations

from detectors.rates import RateWindow, fires
from tests.builders import sample
from tests.detection_harness import POLICY, run, top


def _sbe_scrapes(counts: list[int], every_s: float = 15.0, gpu: int = 2, t0: float = 15.0) -> list:  # type: ignore[type-arg]
    """Scrapes whose GPU ``gpu`` SBE counter reads each of ``counts`` in turn."""
    return [sample("n1", t0 + k * every_s, **{f"g{gpu}": {"sbe_volatile": c}}) for k, c in enumerate(counts)]


def test_one_corrected_error_is_no_evidence_at_all() -> None:
    """ "1 SBE in 15 s" was read as 240 an hour: the window holds one."""
    st, now = run(_sbe_scrapes([0] * 10 + [1] * 10))
    assert top(st, now) is None


def test_one_pcie_replay_is_no_evidence_at_all() -> None:
    scrapes = [sample("n1", 15.0 * k, g4={"pcie_replay": 0 if k < 5 else 1}) for k in range(1, 12)]
    st, now = run(scrapes)
    assert top(st, now) is None


def test_a_few_corrected_errors_a_day_on_every_gpu_stay_silent() -> None:
    """Six SBEs spread over a day on a GPU: a chatty card every large fleet has."""
    counts = [k * 6 // 5760 for k in range(5760)]  # a day of 15 s scrapes
    st, now = run(_sbe_scrapes(counts))
    assert top(st, now) is None


def test_a_sustained_rate_at_the_fleet_threshold_is_evidence_worth_a_look() -> None:
    """The catalog's fleet threshold for SBEs is 100 an hour: a GPU holding that rate is Suspect."""
    counts = [k * 2 for k in range(240)]  # 2 per minute-scrape at a 30 s scrape: 240 an hour
    st, now = run(_sbe_scrapes(counts, every_s=30.0))
    a = top(st, now)
    assert a is not None and a.gpu == 2 and a.domain.value == "gpu_memory"
    assert a.confidence >= POLICY.thresholds.suspect_enter


def test_an_accelerating_rate_on_a_quiet_gpu_fires_before_the_fleet_threshold() -> None:
    """25 SBEs within the hour on a GPU whose own baseline is zero: a quarter of the fleet threshold
    and far above its own history."""
    counts = [min(k, 30) for k in range(120)]  # one a scrape for 30 scrapes
    st, now = run(_sbe_scrapes(counts, every_s=60.0))
    a = top(st, now)
    assert a is not None and a.gpu == 2


def test_a_gpus_own_baseline_raises_its_accelerating_bar() -> None:
    """A GPU that has logged ~8 an hour for a day needs 8x that before its rise alone is acceleration;
    the fleet threshold still applies to it as to any GPU."""
    w = RateWindow.new(0.0)
    for hour in range(24):
        for m in range(8):
            w.add(1, hour * 3600.0 + m * 450.0, 3600.0)
    assert w.base > 4.0
    quiet = RateWindow.new(0.0)
    assert fires(30.0, quiet, 100.0) and not fires(30.0, w, 100.0) and fires(100.0, w, 100.0)


def test_a_counter_reset_is_not_an_increase() -> None:
    """A driver reload or reboot zeroes the volatile counters: never a negative or a huge delta."""
    st, now = run(_sbe_scrapes([5000] * 4 + [0] * 4 + [1] * 4))
    assert top(st, now) is None
