"""Xids from NVML events and from kernel lines: one meaning, two sources, one slot.

Attribution rules (NVIDIA's catalog): application Xids (13, 31, 43, 69, 45) blame the program, and
the same application Xid on several GPUs of one job blames the job; NVLink-family Xids on several GPUs
at once, or right after another GPU's hardware Xid, are sympathetic to that first failure.
"""

from __future__ import annotations

from datetime import datetime

from detectors.catalog import Catalog
from detectors.emit import observe
from detectors.kernel_parser import parse_kernel_line
from detectors.state import MAX_JOBS, DetectState
from schemas.events import GpuXid, NodeKernel
from schemas.evidence import Evidence

SYMPATHY_WINDOW_S = 60.0
FABRIC_FANOUT = 3


def _xid(
    st: DetectState,
    cat: Catalog,
    code: int,
    gpu: int | None,
    job: str | None,
    event_id: str,
    source: str,
    when: datetime,
    now: float,
    detail: str,
) -> list[Evidence]:
    sig = cat.xid(code)
    key = f"xid.{code}"
    if sig.application:
        if job is not None and gpu is not None:
            if job in st.app_xid_gpus or len(st.app_xid_gpus) < MAX_JOBS:
                st.app_xid_gpus.setdefault(job, set()).add(gpu)
            else:
                # Forget the oldest job first: bounded memory on nodes that run many jobs.
                st.app_xid_gpus.pop(next(iter(st.app_xid_gpus)))
                st.app_xid_gpus[job] = {gpu}
        if job is not None and len(st.app_xid_gpus.get(job, ())) >= 2:
            detail = f"job {job}: application Xid {code} on GPUs {sorted(st.app_xid_gpus[job])}"
        ev = observe(st, key, sig, gpu, event_id, source, when, now, "application", detail or sig.name)
        return [ev] if ev else []
    attribution = "hardware"
    if sig.sympathetic and st.last_hw_xid is not None:
        t0, g0 = st.last_hw_xid
        if now - t0 <= SYMPATHY_WINDOW_S and g0 != gpu:
            attribution = "sympathetic"
            detail = f"Xid {code} follows a hardware Xid on GPU {g0} {now - t0:.0f}s earlier"
    if sig.sympathetic and attribution == "hardware":
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
    ev = observe(st, key, sig, gpu, event_id, source, when, now, attribution, detail or sig.name)  # type: ignore[arg-type]
    return [ev] if ev else []


def detect_xid(st: DetectState, ev: GpuXid, cat: Catalog, now: float) -> list[Evidence]:
    extra = ev.data.model_extra or {}
    job = extra.get("job")
    return _xid(
        st,
        cat,
        ev.data.xid,
        ev.data.gpu,
        job if isinstance(job, str) else None,
        ev.id,
        ev.source,
        ev.time,
        now,
        ev.data.message or "",
    )


def detect_kernel(st: DetectState, ev: NodeKernel, cat: Catalog, now: float) -> list[Evidence]:
    finding = parse_kernel_line(ev.data.line)
    if finding is None:
        st.unparsed_kernel_lines += 1
        return []
    gpu = st.bus_to_gpu.get(finding.bus_id) if finding.bus_id else None
    if finding.kind == "xid" and finding.xid is not None:
        return _xid(st, cat, finding.xid, gpu, None, ev.id, ev.source, ev.time, now, finding.message)
    sig = cat.kernel_patterns[finding.kind]
    out = observe(
        st,
        f"kernel.{finding.kind}",
        sig,
        None if finding.kind in ("sxid", "mce", "hung_task") else gpu,
        ev.id,
        ev.source,
        ev.time,
        now,
        detail=finding.message[:200],
    )
    return [out] if out else []
