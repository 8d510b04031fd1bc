"""Detection step: one typed event about one node → evidence items, with the node's DetectState
updated in place. Pure: time comes from the event (``now`` is the stream clock), never the wall."""

from __future__ import annotations

from detectors.catalog import Catalog
from detectors.registry import TICKS, for_event
from detectors.state import DetectState
from schemas.events import Envelope, event_type_of
from schemas.evidence import Evidence


def detect(st: DetectState, event: Envelope, cat: Catalog, now: float) -> list[Evidence]:
    """Evidence from one event, by the detector registered for its type (``detectors.registry``).
    Events without one (repair status, action results) yield none: the lifecycle handles them."""
    st.last_time = max(st.last_time, now)
    spec = for_event(event_type_of(event))
    return spec.detect(st, event, cat, now) if spec is not None else []


def tick(st: DetectState, cat: Catalog, now: float) -> list[Evidence]:
    """Time passing with no event for this node: the only way silence can become evidence
    (the tick detectors of ``detectors.registry``)."""
    return [e for detect_tick in TICKS.values() for e in detect_tick(st, cat, now)]


def lemon_score(st: DetectState, now: float, half_life_s: float) -> float:
    """Decayed count of this node's past repairs: repeat offenders get lower thresholds, then RMA."""
    return float(st.lemon * 0.5 ** (max(0.0, now - st.lemon_time) / half_life_s))


def add_lemon(st: DetectState, gpu: int | None, now: float, half_life_s: float) -> None:
    st.lemon = lemon_score(st, now, half_life_s) + 1.0
    st.lemon_time = now
    if gpu is not None:
        score, t = st.gpu_lemon.get(gpu, (0.0, now))
        st.gpu_lemon[gpu] = (score * 0.5 ** (max(0.0, now - t) / half_life_s) + 1.0, now)
