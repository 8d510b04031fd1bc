"""The other event families: node conditions, workload symptoms, scheduler view, tenant reports,
collector heartbeats and changes. Each is a few lines of catalog lookup."""

from __future__ import annotations

from datetime import UTC, datetime

from detectors.catalog import Catalog
from detectors.emit import clear, observe
from detectors.kernel_parser import normalize_bus_id
from detectors.state import DetectState
from schemas.events import (
    AgentHeartbeat,
    ChangeEvent,
    NodeCondition,
    NodeInventory,
    SchedulerState,
    TenantReport,
    WorkloadEvent,
)
from schemas.evidence import Evidence
from schemas.vocab import Attribution

SILENT_AFTER_INTERVALS = 3.0


def apply_inventory(st: DetectState, ev: NodeInventory) -> None:
    d = ev.data
    st.pool, st.rack, st.sku, st.gpus, st.labels = d.pool, d.rack, d.sku, d.gpus, dict(d.labels)
    st.bus_to_gpu = {normalize_bus_id(b): i for i, b in enumerate(d.gpu_bus_ids or [])}


def detect_condition(st: DetectState, ev: NodeCondition, cat: Catalog, now: float) -> list[Evidence]:
    sig = cat.conditions.get(ev.data.condition)
    if sig is None:
        return []
    key = f"condition.{ev.data.condition}"
    if ev.data.status == sig.bad_status or (ev.data.condition == "Ready" and ev.data.status == "Unknown"):
        e = observe(
            st,
            key,
            sig,
            None,
            ev.id,
            ev.source,
            ev.time,
            now,
            detail=f"{ev.data.condition}={ev.data.status} {ev.data.reason}".strip(),
        )
        return [e] if e else []
    return []


def detect_workload(st: DetectState, ev: WorkloadEvent, cat: Catalog, now: float) -> list[Evidence]:
    sig = cat.workload[ev.data.kind]
    if sig.weight <= 0:
        return []
    gpus: list[int | None] = [*ev.data.gpus] if ev.data.gpus else [None]
    out = []
    who = ev.data.job or ev.data.pod or "workload"
    for g in gpus:
        e = observe(
            st,
            f"workload.{ev.data.kind}",
            sig,
            g,
            ev.id,
            ev.source,
            ev.time,
            now,
            detail=f"{ev.data.kind} in {who}",
        )
        if e:
            out.append(e)
    return out


def detect_scheduler(st: DetectState, ev: SchedulerState, cat: Catalog, now: float) -> list[Evidence]:
    alloc = ev.data.allocatable_gpus
    if alloc is None or st.gpus == 0:
        return []
    if alloc < st.gpus:
        e = observe(
            st,
            "allocatable_drop",
            cat.samples["allocatable_drop"],
            None,
            ev.id,
            ev.source,
            ev.time,
            now,
            detail=f"scheduler sees {alloc} of {st.gpus} GPUs allocatable",
        )
        return [e] if e else []
    clear(st, "gpu_hardware", None, "allocatable_drop")
    return []


def detect_tenant(st: DetectState, ev: TenantReport, cat: Catalog, now: float) -> list[Evidence]:
    sig = cat.tenant_categories[ev.data.category]
    e = observe(
        st,
        f"tenant.{ev.data.category}",
        sig,
        None,
        ev.id,
        ev.source,
        ev.time,
        now,
        Attribution.TENANT,
        detail=f"tenant report on {ev.data.instance_id}: {ev.data.summary}",
    )
    return [e] if e else []


def note_heartbeat(st: DetectState, ev: AgentHeartbeat, now: float) -> None:
    st.heartbeats[ev.data.collector] = (now, ev.data.interval_s)
    clear(st, "monitoring", None, f"agent_silent.{ev.data.collector}")


def check_silence(st: DetectState, cat: Catalog, now: float, event_id: str) -> list[Evidence]:
    """A collector that missed several heartbeats is monitoring evidence: never node-fault evidence."""
    out = []
    for collector, (last, interval) in st.heartbeats.items():
        key = f"agent_silent.{collector}"
        if now - last > SILENT_AFTER_INTERVALS * interval and ("monitoring", None, key) not in st.slots:
            e = observe(
                st,
                key,
                cat.samples["agent_silent"],
                None,
                event_id,
                "breakfix",
                datetime.fromtimestamp(now, UTC),
                now,
                Attribution.MONITORING,
                detail=f"collector {collector} silent for {now - last:.0f}s (interval {interval:.0f}s)",
            )
            if e:
                out.append(e)
        elif ("monitoring", None, key) in st.slots:
            # Keep the silence evidence fresh while the silence lasts.
            st.slots[("monitoring", None, key)].last_time = now
    return out


def applies_to(st: DetectState, ev: ChangeEvent) -> bool:
    scope = ev.data.scope
    return (scope.nodes is not None and st.node in scope.nodes) or (
        scope.pool is not None and scope.pool == st.pool
    )


def note_change(st: DetectState, ev: ChangeEvent, now: float) -> None:
    """Remember a change that touches this node. The same change (kind and version) is noted once:
    a node a scoped change names is reached by the event and again by its fleet-wide copy
    (policy.driver's scope fan-out), and the first arrival is the change's time on this node."""
    if applies_to(st, ev) and not any(k == ev.data.kind and v == ev.data.version for _, k, v in st.changes):
        st.changes.append((now, ev.data.kind, ev.data.version))
