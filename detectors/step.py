"""Detection step: one typed event about one node → evidence items, with the node's DetectState
updated in place. Pure: time comes from the event (``now`` is the stream clock), never the wall."""

from __future__ import annotations

from collections.abc import Callable

from detectors.catalog import Catalog
from detectors.sample import detect_sample
from detectors.signals import (
    apply_inventory,
    check_silence,
    detect_condition,
    detect_scheduler,
    detect_tenant,
    detect_workload,
    note_change,
    note_heartbeat,
)
from detectors.state import DetectState
from detectors.xid import detect_kernel, detect_xid
from schemas.events import (
    AgentHeartbeat,
    ChangeEvent,
    Envelope,
    GpuSample,
    GpuXid,
    NodeCondition,
    NodeInventory,
    NodeKernel,
    SchedulerState,
    TenantReport,
    WorkloadEvent,
)
from schemas.evidence import Evidence

Detector = Callable[[DetectState, Envelope, Catalog, float], list[Evidence]]

_DETECTORS: dict[type[Envelope], Detector] = {
    GpuSample: detect_sample,  # type: ignore[dict-item]
    GpuXid: detect_xid,  # type: ignore[dict-item]
    NodeKernel: detect_kernel,  # type: ignore[dict-item]
    NodeCondition: detect_condition,  # type: ignore[dict-item]
    WorkloadEvent: detect_workload,  # type: ignore[dict-item]
    SchedulerState: detect_scheduler,  # type: ignore[dict-item]
    TenantReport: detect_tenant,  # type: ignore[dict-item]
}


def detect(st: DetectState, event: Envelope, cat: Catalog, now: float) -> list[Evidence]:
    """Evidence from one event. Events without a detector (repair status, action results) yield none:
    the lifecycle handles them."""
    st.last_time = max(st.last_time, now)
    fn = _DETECTORS.get(type(event))
    if fn is not None:
        return fn(st, event, cat, now)
    if isinstance(event, NodeInventory):
        apply_inventory(st, event)
    elif isinstance(event, AgentHeartbeat):
        note_heartbeat(st, event, now)
    elif isinstance(event, ChangeEvent):
        note_change(st, event, now)
    return []


def tick(st: DetectState, cat: Catalog, now: float) -> list[Evidence]:
    """Time passing with no event for this node: the only way silence can become evidence."""
    return check_silence(st, cat, now, f"tick:{st.node}:{int(now)}")


def lemon_score(st: DetectState, now: float, half_life_s: float) -> float:
    """Decayed count of this node's past repairs: repeat offenders get lower thresholds, then RMA."""
    return float(st.lemon * 0.5 ** (max(0.0, now - st.lemon_time) / half_life_s))


def add_lemon(st: DetectState, gpu: int | None, now: float, half_life_s: float) -> None:
    st.lemon = lemon_score(st, now, half_life_s) + 1.0
    st.lemon_time = now
    if gpu is not None:
        score, t = st.gpu_lemon.get(gpu, (0.0, now))
        st.gpu_lemon[gpu] = (score * 0.5 ** (max(0.0, now - t) / half_life_s) + 1.0, now)
