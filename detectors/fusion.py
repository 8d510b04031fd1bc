"""Fusion: active evidence → a stated confidence per (failure domain, GPU or node).

Noisy-OR over *independent* signals (one slot per signal, so two collectors reporting one Xid count
once). One non-decisive signal alone is capped below any act threshold; online models are capped;
workload symptoms on the same GPU corroborate hardware domains, unless a crashed job explains them
(then they are part of that job's finding); symptoms that begin soon after a change touched the node
are attributed to the change; application and sympathetic evidence never count as hardware evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.slots import Slot
from detectors.state import DetectState
from schemas.common import FailureDomain
from schemas.decision import ACTION_COST, ActionKind
from schemas.vocab import Attribution, FailureClass

HARDWARE_DOMAINS = frozenset(
    {
        FailureDomain.GPU_HARDWARE,
        FailureDomain.GPU_MEMORY,
        FailureDomain.THERMAL_POWER,
        FailureDomain.NVLINK_FABRIC,
        FailureDomain.NETWORK,
        FailureDomain.NODE_OS,
        FailureDomain.CONTAINER_RUNTIME,
    }
)
CHANGE_PRONE = frozenset(
    {
        FailureDomain.NODE_OS,
        FailureDomain.CONTAINER_RUNTIME,
        FailureDomain.GPU_HARDWARE,
        FailureDomain.NETWORK,
        FailureDomain.WORKLOAD_SYMPTOM,
    }
)


@dataclass(frozen=True)
class FusionConfig:
    single_cap: float = 0.55
    """One non-decisive signal can never exceed this: below every act threshold."""
    model_cap: float = 0.15
    corroboration_factor: float = 0.5
    change_window_s: float = 7200.0
    app_job_gpus: int = 2
    """Application Xids on this many GPUs of one job make the job suspect (never the hardware)."""


@dataclass(frozen=True, slots=True)
class Assessment:
    domain: FailureDomain
    gpu: int | None
    confidence: float
    decisive: bool
    signals: int
    top_signal: str
    action: ActionKind
    failure_class: FailureClass
    attribution: Attribution
    reasons: tuple[str, ...]
    event_ids: tuple[str, ...]
    evidence_time: float
    episode_start: float
    job: str | None = None


DBE_SIGNALS = frozenset({"dbe", "xid.48"})
REMAP_PENDING = "row_remap_pending"


def _decisive_pair(values: list[tuple[float, Slot]]) -> bool:
    """A double-bit error whose row remap is pending is decisive together, though neither is alone:
    NVIDIA's GPU memory error management says the remap applies only at the next GPU reset, so until
    then the faulty row stays in use. (A remap failure is decisive on its own, in the catalog.)"""
    live = {s.signal for v, s in values if v >= 0.05 and s.gpu is not None}
    return REMAP_PENDING in live and not live.isdisjoint(DBE_SIGNALS)


def _expire(st: DetectState, now: float) -> None:
    dead = [k for k, s in st.slots.items() if s.expired(now)]
    for k in dead:
        del st.slots[k]


def _assess(
    domain: FailureDomain,
    gpu: int | None,
    slots: list[Slot],
    corroborating: list[Slot],
    now: float,
    cfg: FusionConfig,
) -> Assessment | None:
    values: list[tuple[float, Slot]] = []
    model_total = 0.0
    for s in slots:
        v = s.effective(now, cfg.single_cap)
        if s.model:
            model_total += v
        elif v > 0:
            values.append((v, s))
    if not values:
        return None
    # The episode begins with the domain's own signals: a corroborating symptom that was already
    # around (a background latency spike) must not move the start before a change that caused it.
    episode_start = min(s.first_time for _, s in values)
    for s in corroborating:
        v = s.effective(now, cfg.single_cap) * cfg.corroboration_factor
        if v > 0.02:
            values.append((v, s))
    miss = 1.0
    for v, _ in values:
        miss *= 1.0 - v
    miss *= 1.0 - min(model_total, cfg.model_cap)
    conf = 1.0 - miss
    decisive = any(s.decisive and v >= 0.5 for v, s in values) or _decisive_pair(values)
    # Independent means different signals seen in different events: two signals read from one scrape
    # (a hot GPU that also throttles once) are one observation, not corroboration.
    strong_slots = [s for v, s in values if v >= 0.05]
    independent = min(
        len({s.signal for s in strong_slots}), len({i for s in strong_slots for i in s.event_ids})
    )
    if independent <= 1:
        # Even a decisive signal alone is capped: only policy (single-signal classes) lets it act alone.
        conf = min(conf, cfg.single_cap)
    values.sort(key=lambda p: (-p[0], p[1].signal))
    top = values[0][1]
    strong = [s for v, s in values if v >= 0.3 and s.domain == domain] or [top]
    action = max((ActionKind(s.action) for s in strong), key=lambda a: ACTION_COST[a])
    reasons = tuple(
        f"{s.signal}{'' if s.gpu is None else f' gpu{s.gpu}'}: {s.detail} (w={v:.2f})" for v, s in values[:5]
    )
    ids: list[str] = []
    for _, s in values:
        for i in s.event_ids:
            if i not in ids:
                ids.append(i)
    attribution = Attribution.TENANT if top.attribution == Attribution.TENANT else Attribution.HARDWARE
    return Assessment(
        domain,
        gpu,
        round(min(conf, 1.0), 4),
        decisive,
        independent,
        top.signal,
        action,
        FailureClass.TENANT_REPORT if attribution == Attribution.TENANT else FailureClass.of(domain),
        attribution,
        reasons,
        tuple(ids[:32]),
        max(s.last_time for _, s in values),
        episode_start,
    )


def _attribute_change(a: Assessment, st: DetectState, cfg: FusionConfig) -> Assessment:
    if a.decisive or a.domain not in CHANGE_PRONE or a.attribution != Attribution.HARDWARE:
        return a
    for t, kind, version in reversed(st.changes):
        if 0 <= a.episode_start - t <= cfg.change_window_s:
            why = f"began {a.episode_start - t:.0f}s after {kind} change to {version}"
            return Assessment(
                a.domain,
                a.gpu,
                a.confidence,
                False,
                a.signals,
                a.top_signal,
                ActionKind.ROLLBACK_CHANGE,
                FailureClass.CHANGE_REGRESSION,
                Attribution.CHANGE,
                (why, *a.reasons),
                a.event_ids,
                a.evidence_time,
                a.episode_start,
            )
    return a


def _application(st: DetectState, app: list[Slot], now: float, cfg: FusionConfig) -> Assessment | None:
    jobs = {job: gpus for job, gpus in st.app_xid_gpus.items() if len(gpus) >= cfg.app_job_gpus}
    live = [s for s in app if s.effective(now, 1.0) >= 0.02]
    if not jobs or not live:
        return None
    job = sorted(jobs)[0]
    ids = tuple(dict.fromkeys(i for s in live for i in s.event_ids))[:32]
    return Assessment(
        FailureDomain.WORKLOAD_SYMPTOM,
        None,
        0.4,
        False,
        1,
        live[0].signal,
        ActionKind.OBSERVE,
        FailureClass.WORKLOAD_SYMPTOM,
        Attribution.APPLICATION,
        (f"application Xids on GPUs {sorted(jobs[job])} of job {job}: the job's fault, not the GPUs'",),
        ids,
        max(s.last_time for s in live),
        min(s.first_time for s in live),
        job,
    )


def fuse(st: DetectState, now: float, cfg: FusionConfig) -> list[Assessment]:
    """All current assessments, most confident first (ties broken deterministically)."""
    _expire(st, now)
    st.dirty = False
    hw: dict[tuple[FailureDomain, int | None], list[Slot]] = {}
    node_level: dict[FailureDomain, list[Slot]] = {}
    workload: dict[int | None, list[Slot]] = {}
    app: list[Slot] = []
    monitoring: list[Slot] = []
    for s in st.slots.values():
        if s.attribution == Attribution.APPLICATION:
            app.append(s)
        elif s.attribution == Attribution.MONITORING:
            monitoring.append(s)
        elif s.attribution == Attribution.SYMPATHETIC:
            continue
        elif s.domain == FailureDomain.WORKLOAD_SYMPTOM:
            workload.setdefault(s.gpu, []).append(s)
        elif s.gpu is None:
            node_level.setdefault(s.domain, []).append(s)
        else:
            hw.setdefault((s.domain, s.gpu), []).append(s)
    out: list[Assessment] = []
    app_a = _application(st, app, now, cfg)
    for domain in node_level:
        hw.setdefault((domain, None), [])
    for (domain, gpu), slots in hw.items():
        merged = slots + node_level.get(domain, []) if gpu is not None else node_level.get(domain, [])
        # A crashed job's symptoms (its pods crash-looping) are the job's, never hardware corroboration.
        corr = (
            workload.get(gpu, []) + (workload.get(None, []) if gpu is not None else [])
            if domain in HARDWARE_DOMAINS and app_a is None
            else []
        )
        a = _assess(domain, gpu, merged, corr, now, cfg)
        if a is not None:
            out.append(_attribute_change(a, st, cfg))
    for gpu, slots in workload.items() if app_a is None else ():
        a = _assess(FailureDomain.WORKLOAD_SYMPTOM, gpu, slots, [], now, cfg)
        if a is not None:
            out.append(_attribute_change(a, st, cfg))
    if app_a is not None:
        out.append(app_a)
    if monitoring:
        v = max(s.effective(now, 1.0) for s in monitoring)
        ids = tuple(i for s in monitoring for i in s.event_ids)[:32]
        out.append(
            Assessment(
                FailureDomain.MONITORING,
                None,
                round(v, 4),
                False,
                1,
                monitoring[0].signal,
                ActionKind.TICKET,
                FailureClass.MONITORING,
                Attribution.MONITORING,
                tuple(s.detail for s in monitoring),
                ids,
                max(s.last_time for s in monitoring),
                min(s.first_time for s in monitoring),
            )
        )
    out.sort(key=lambda a: (-a.confidence, a.domain.value, -1 if a.gpu is None else a.gpu))
    return out
