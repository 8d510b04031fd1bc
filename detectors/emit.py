"""Turning one observation of a catalog signal into slot updates and (sometimes) an Evidence item.

An Evidence item is emitted when a slot opens and when its repeat count reaches a power of two, so a
sustained condition is audited without one item per scrape. Fusion reruns at once when a slot opens,
strengthens or reaches such a count; plain repeats wait for the node's next tick.
"""

from __future__ import annotations

from datetime import datetime

from detectors.catalog import Catalog, Signal
from detectors.slots import Slot
from detectors.state import DetectState
from schemas.evidence import Evidence
from schemas.vocab import Attribution


def observe(
    st: DetectState,
    signal_key: str,
    sig: Signal,
    gpu: int | None,
    event_id: str,
    source: str,
    when: datetime,
    now: float,
    attribution: Attribution = Attribution.HARDWARE,
    detail: str = "",
    weight: float | None = None,
    model: bool = False,
) -> Evidence | None:
    key = (sig.domain.value, gpu, signal_key)
    slot = st.slots.get(key)
    w = sig.weight if weight is None else weight
    if slot is None or slot.expired(now):
        slot = Slot(
            sig.domain,
            gpu,
            signal_key,
            w,
            sig.half_life_s,
            sig.decisive,
            sig.action.value,
            attribution.value,
            source,
            now,
            now,
            detail=detail,
            model=model,
        )
        st.slots[key] = slot
        emit = True
    else:
        slot.count += 1
        slot.last_time = max(slot.last_time, now)
        stronger = w > slot.weight
        if stronger:
            slot.weight = w
        emit = slot.count & (slot.count - 1) == 0
        if stronger:
            st.dirty = True
    slot.add_event(event_id)
    if not emit:
        # A plain repeat: fusion picks it up at the node's next tick (tick_s), not on every scrape.
        return None
    st.dirty = True
    return Evidence(
        id=f"ev:{event_id}:{signal_key}:{'' if gpu is None else gpu}",
        node=st.node,
        gpu=gpu,
        domain=sig.domain,
        signal=signal_key,
        weight=w,
        half_life_s=sig.half_life_s,
        decisive=sig.decisive,
        source=source,
        time=when,
        event_ids=[event_id],
        attribution=attribution,
        detail=detail or sig.name,
    )


def clear_recovery(st: DetectState, cat: Catalog, gpu: int | None) -> None:
    """The driver's recovery action reads none again (NVML field, or an Xid 154 back to None): every
    recovery evidence of that GPU is spent."""
    for key, sig in cat.samples.items():
        if key.startswith("recovery_"):
            clear(st, sig.domain.value, gpu, key)


def clear(st: DetectState, domain: str, gpu: int | None, signal_key: str) -> None:
    if st.slots.pop((domain, gpu, signal_key), None) is not None:
        st.dirty = True
