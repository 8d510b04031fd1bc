"""One contract suite over every registered detector (the way river's ``check_estimator`` runs over
every estimator): each detector declares its examples in ``detectors.registry`` and is checked here
for what all detectors promise. A detector added to the registry is checked without touching this
file; one whose examples break a promise fails here by name."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from detectors.catalog import default_catalog
from detectors.fusion import FusionConfig, fuse
from detectors.record import det_state
from detectors.registry import DETECTORS, TICKS, DetectorSpec, EventData, Examples, for_event
from detectors.state import DetectState
from detectors.step import detect
from schemas.events import EVENT_TYPES, Envelope
from schemas.parse import validate_event_dict
from schemas.vocab import ACTIONABLE_ATTRIBUTIONS

SPECS = sorted(DETECTORS.values(), key=lambda s: s.name)
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
CAT = default_catalog()


def _event(spec_event: EventData, i: int) -> tuple[Envelope, float]:
    kind, data = spec_event
    t = T0 + 30.0 * i
    obj: dict[str, Any] = {
        "id": f"c{i}",
        "type": kind,
        "source": "contract",
        "time": datetime.fromtimestamp(t, UTC).isoformat(),
        "node": "n1",
        "data": data,
    }
    return validate_event_dict(obj), t


def _run(events: list[EventData]) -> tuple[DetectState, list[list[dict[str, Any]]]]:
    """Feed events in order through ``detectors.step.detect``; the evidence each one yielded."""
    st = DetectState("n1")
    out = []
    for i, e in enumerate(events):
        ev, t = _event(e, i)
        out.append([x.model_dump(mode="json") for x in detect(st, ev, CAT, t)])
    return st, out


def test_every_detector_declares_examples_of_its_own_event_type() -> None:
    for spec in SPECS:
        ex = spec.examples
        assert ex.noise or ex.signal, f"{spec.name} declares no examples"
        assert spec.event_type in EVENT_TYPES, spec.name
        assert all(k == spec.event_type for k, _ in (*ex.noise, *ex.signal)), spec.name
        assert for_event(spec.event_type) is spec


def _actionable(st: DetectState) -> list[str]:
    """What fusion would hold against the node: assessments that can move it toward quarantine."""
    now = st.last_time
    return [
        f"{a.top_signal}={a.confidence}"
        for a in fuse(st, now, FusionConfig())
        if a.attribution in ACTIONABLE_ATTRIBUTIONS and a.confidence > 0
    ]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_noise_never_acts(spec: DetectorSpec) -> None:
    """Healthy events, alone and as a long stream, leave nothing fusion could act on (an application's
    own Xid is kept as evidence against the job, never the hardware)."""
    ex = spec.examples
    alone, _ = _run([*ex.setup, *ex.noise])
    stream, _ = _run([*ex.setup, *(ex.noise * 200)])
    assert _actionable(alone) == [] and _actionable(stream) == [], spec.name


@pytest.mark.parametrize("spec", [s for s in SPECS if s.examples.signal], ids=lambda s: s.name)
def test_signal_becomes_evidence(spec: DetectorSpec) -> None:
    """The suite can fail: each detector's own fault example does yield evidence."""
    ex = spec.examples
    st, out = _run([*ex.setup, *ex.noise, *ex.signal])
    assert any(out[len(ex.setup) + len(ex.noise) :]), f"{spec.name}: signal example yielded no evidence"
    assert _actionable(st), f"{spec.name}: signal evidence is nothing fusion could act on"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_deterministic(spec: DetectorSpec) -> None:
    """The same events from the same state give the same evidence and the same state (replay and the
    live stream must agree)."""
    ex = spec.examples
    events = [*ex.setup, *ex.noise, *ex.signal, *ex.noise]
    st1, out1 = _run(events)
    st2, out2 = _run(events)
    assert out1 == out2
    assert det_state(st1) == det_state(st2)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_state_stays_bounded(spec: DetectorSpec) -> None:
    """A node's checkpointed state does not grow with the number of events: ten times the stream
    gives the same record size (within a few bytes of float widths)."""
    ex = spec.examples
    mix = [*ex.noise, *ex.signal] or list(ex.noise)
    short, _ = _run([*ex.setup, *(mix * 50)])
    long, _ = _run([*ex.setup, *(mix * 500)])
    a, b = len(pickle.dumps(det_state(short))), len(pickle.dumps(det_state(long)))
    assert b <= a * 1.05 + 64, f"{spec.name}: {a} -> {b} bytes"


@pytest.mark.parametrize("name", sorted(TICKS))
def test_ticks_are_quiet_while_every_collector_reports_and_deterministic(name: str) -> None:
    heartbeats = list(DETECTORS["agent.heartbeat"].examples.noise)
    st, _ = _run(heartbeats * 10)
    now = st.last_time + 30.0
    assert TICKS[name](st, CAT, now) == []
    late = now + 3600.0  # an hour without a heartbeat of a 30-second collector
    again, _ = _run(heartbeats * 10)
    first, second = TICKS[name](st, CAT, late), TICKS[name](again, CAT, late)
    assert [e.model_dump() for e in first] == [e.model_dump() for e in second]


def test_event_types_without_a_detector_yield_nothing() -> None:
    st = DetectState("n1")
    ev, t = _event(("action.result", {"decision_id": "d1", "action": "reboot", "status": "succeeded"}), 0)
    assert detect(st, ev, CAT, t) == []


# --- the suite can fail: detectors that break a promise are caught ---------------------------------

_REPAIR = ("repair.status", {"repair_status": "Completed"})


def _swap(spec: DetectorSpec) -> DetectorSpec:
    """Register ``spec`` on an event type that has no detector (removed by the caller)."""
    assert for_event(spec.event_type) is None
    DETECTORS[spec.event_type] = spec
    return spec


def test_a_detector_that_acts_on_noise_is_caught() -> None:
    from detectors.emit import observe

    def trigger_happy(st: DetectState, ev: Any, cat: Any, now: float) -> list[Any]:
        e = observe(st, "condition.Ready", cat.conditions["Ready"], None, ev.id, ev.source, ev.time, now)
        return [e] if e else []

    spec = _swap(DetectorSpec("bad", "repair.status", trigger_happy, Examples(noise=(_REPAIR,))))
    try:
        with pytest.raises(AssertionError):
            test_noise_never_acts(spec)
    finally:
        del DETECTORS["repair.status"]


def test_a_detector_whose_state_grows_is_caught() -> None:
    def hoarder(st: DetectState, ev: Any, cat: Any, now: float) -> list[Any]:
        st.labels[f"seen-{now}"] = ev.id
        return []

    spec = _swap(DetectorSpec("hoarder", "repair.status", hoarder, Examples(noise=(_REPAIR,))))
    try:
        with pytest.raises(AssertionError):
            test_state_stays_bounded(spec)
    finally:
        del DETECTORS["repair.status"]
