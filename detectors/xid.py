"""Xids from NVML events and from kernel lines: one meaning, two sources, one slot.

Attribution rules (NVIDIA's catalog): Xids whose immediate resolution is to restart the application
blame the program, and the same application Xid on several GPUs of one job blames the job; Xids NVIDIA
says to ignore are kept with no weight; NVLink-family Xids on several GPUs at once, or right after
another GPU's hardware Xid, are sympathetic to that first failure. Per-line rules (NVLink5 severity,
Xid 154's recovery action, SXid fatality) are read in :mod:`detectors.xid_reading`.
"""

from __future__ import annotations

from datetime import datetime

from detectors.catalog import Catalog
from detectors.emit import clear_recovery, observe
from detectors.kernel_parser import NODE_LEVEL_KINDS, KernelFinding, parse_kernel_line
from detectors.state import MAX_JOBS, DetectState
from detectors.xid_reading import Reading, read_sxid, read_xid
from schemas.events import GpuXid, NodeKernel
from schemas.evidence import Evidence
from schemas.vocab import Attribution

SYMPATHY_WINDOW_S = 60.0
FABRIC_FANOUT = 3
REMAP_CHAIN_S = 3600.0
"""An Xid 63 (row remap recorded) this soon after an Xid 48 on the same GPU is that DBE's remap."""


def _note_job(st: DetectState, job: str, gpu: int) -> None:
    if job in st.app_xid_gpus or len(st.app_xid_gpus) < MAX_JOBS:
        st.app_xid_gpus.setdefault(job, set()).add(gpu)
    else:
        # Forget the oldest job first: bounded memory on nodes that run many jobs.
        st.app_xid_gpus.pop(next(iter(st.app_xid_gpus)))
        st.app_xid_gpus[job] = {gpu}


def _xid(
    st: DetectState,
    cat: Catalog,
    r: Reading,
    gpu: int | None,
    job: str | None,
    event_id: str,
    source: str,
    when: datetime,
    now: float,
    detail: str,
) -> list[Evidence]:
    sig, key, code = r.signal, r.key, r.code
    detail = detail or sig.name
    if r.rule != "catalog":
        detail = f"{detail} [{r.rule}]"
    if r.clears:
        clear_recovery(st, cat, gpu)
    if r.follows is not None:
        ev = observe(st, key, sig, gpu, event_id, source, when, now, Attribution.SYMPATHETIC, detail)
        return [ev] if ev else []
    if sig.application:
        if job is not None and gpu is not None:
            _note_job(st, job, gpu)
        if job is not None and len(st.app_xid_gpus.get(job, ())) >= 2:
            detail = f"job {job}: application Xid {code} on GPUs {sorted(st.app_xid_gpus[job])}"
        ev = observe(st, key, sig, gpu, event_id, source, when, now, Attribution.APPLICATION, detail)
        return [ev] if ev else []
    if sig.informational:
        if code == 63 and (sig.domain.value, gpu, "xid.48") in st.slots:
            detail = (
                f"{detail}: the row remap of the earlier Xid 48, applied by the GPU reset the 48 proposes"
            )
        ev = observe(
            st, key, sig, gpu, event_id, source, when, now, detail=f"informational ({r.resolution}): {detail}"
        )
        return [ev] if ev else []
    attribution = Attribution.HARDWARE
    if sig.sympathetic and st.last_hw_xid is not None:
        t0, g0 = st.last_hw_xid
        if now - t0 <= SYMPATHY_WINDOW_S and g0 != gpu:
            attribution = Attribution.SYMPATHETIC
            detail = f"Xid {code} follows a hardware Xid on GPU {g0} {now - t0:.0f}s earlier"
    if sig.sympathetic and attribution == Attribution.HARDWARE:
        fanout = {
            g
            for (d, g, s), slot in st.slots.items()
            if s == key and g is not None and now - slot.last_time <= SYMPATHY_WINDOW_S
        }
        if gpu is not None:
            fanout.add(gpu)
        if len(fanout) >= FABRIC_FANOUT:
            # The same link error on many GPUs at once is the fabric (NVSwitch/peer), not each GPU.
            gpu = None
            detail = f"Xid {code} on {len(fanout)} GPUs within {SYMPATHY_WINDOW_S:.0f}s: fabric-level"
    if not sig.sympathetic and gpu is not None:
        st.last_hw_xid = (now, gpu)
    ev = observe(st, key, sig, gpu, event_id, source, when, now, attribution, detail)
    return [ev] if ev else []


def detect_xid(st: DetectState, ev: GpuXid, cat: Catalog, now: float) -> list[Evidence]:
    extra = ev.data.model_extra or {}
    job = extra.get("job")
    message = ev.data.message or ""
    gi = extra.get("gpu_instance")
    detail = f"{message} (MIG GPU instance {gi})" if isinstance(gi, int) else message
    return _xid(
        st,
        cat,
        read_xid(cat, ev.data.xid, message),
        ev.data.gpu,
        job if isinstance(job, str) else None,
        ev.id,
        ev.source,
        ev.time,
        now,
        detail,
    )


def _detail(f: KernelFinding) -> str:
    mig = f" (MIG GPU instance {f.gpu_instance})" if f.gpu_instance is not None else ""
    return f"{f.message[:200]}{mig}"


def detect_kernel(st: DetectState, ev: NodeKernel, cat: Catalog, now: float) -> list[Evidence]:
    finding = parse_kernel_line(ev.data.line)
    if finding is None:
        st.unparsed_kernel_lines += 1
        return []
    gpu = st.bus_to_gpu.get(finding.bus_id) if finding.bus_id else None
    if finding.kind == "xid" and finding.xid is not None:
        reading = read_xid(cat, finding.xid, finding.message)
        return _xid(st, cat, reading, gpu, None, ev.id, ev.source, ev.time, now, _detail(finding))
    if finding.kind == "sxid" and finding.xid is not None:
        if finding.fatal is None:
            return []  # a later line of an SXid report: the first line carried its meaning
        r = read_sxid(cat, finding.xid, finding.fatal, finding.link)
        detail = f"SXid {r.code} {r.signal.name} [{r.rule}]"
        out = observe(st, r.key, r.signal, None, ev.id, ev.source, ev.time, now, detail=detail)
        return [out] if out else []
    sig = cat.kernel_patterns[finding.kind]
    out = observe(
        st,
        f"kernel.{finding.kind}",
        sig,
        None if finding.kind in NODE_LEVEL_KINDS else gpu,
        ev.id,
        ev.source,
        ev.time,
        now,
        detail=_detail(finding),
    )
    return [out] if out else []
