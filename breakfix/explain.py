"""``breakfix explain``'s core: how one kernel, SXid or fabric-manager line, or one dcgm-exporter
scrape, is read; the catalog entry and NVIDIA's resolution; and what the product would do with one
occurrence of it under a policy.

It runs the product's own code, not a description of it: the kernel collector's joiner, the parser,
the per-line rules, detection and fusion on a fresh node, and the lifecycle's ``can_act``. So what it
prints is what the node stage would decide for that input alone.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.collect.dcgm import DcgmCollector
from agents.collect.dcgm_text import parse_scrape
from agents.collect.kmsg import MessageJoiner
from detectors.catalog import Catalog
from detectors.fusion import fuse
from detectors.kernel_parser import KernelFinding, parse_kernel_line
from detectors.nvidia_catalog import sxid_catalog, xid_catalog
from detectors.state import DetectState
from detectors.step import detect
from detectors.xid_reading import read_sxid, read_xid
from policy.lifecycle import can_act, pick
from policy.model import Policy
from schemas.events import Envelope
from schemas.parse import validate_event_dict
from schemas.vocab import Attribution

NODE = "explain"
XID_SOURCE = "NVIDIA Xid catalog (docs.nvidia.com/deploy/xid-errors), detectors/nvidia_xids.yaml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count()


@dataclass
class Explanation:
    """One input read end to end."""

    text: str
    read_as: str
    nvidia: dict[str, Any] = field(default_factory=dict)
    """NVIDIA's catalog entry and the resolution that applies to this input."""
    reading: dict[str, Any] = field(default_factory=dict)
    """The product's reading: failure domain, weight, action, flags, the per-line rule that applied."""
    outcome: str = "no evidence: nothing the product acts on"
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _event(type_: str, data: dict[str, Any], t: int = 0) -> Envelope:
    when = datetime.fromtimestamp(T0.timestamp() + t, UTC).isoformat()
    return validate_event_dict(
        {
            "id": f"explain-{next(_ids)}",
            "type": type_,
            "source": "explain",
            "time": when,
            "node": NODE,
            "data": data,
        }
    )


def _outcome(st: DetectState, now: float, policy: Policy, quiet: str = "") -> str:
    a = pick(fuse(st, now, policy.fusion_config()))
    if a is None or a.confidence <= 0:
        if any(s.attribution == Attribution.APPLICATION for s in st.slots.values()):
            return "no hardware action: an application fault (NVIDIA: restart the application)"
        return quiet or "no action: kept in the audit trail with no weight"
    where = "the node" if a.gpu is None else f"GPU {a.gpu}"
    if a.attribution == Attribution.APPLICATION:
        return f"no hardware action: an application fault on {where} (the job's, not the GPU's)"
    if a.attribution != Attribution.HARDWARE:
        return f"no action: {a.attribution} evidence"
    if can_act(a, policy, 0.0):
        alone = (
            " on this evidence alone (decisive, single-signal class)" if a.decisive and a.signals == 1 else ""
        )
        return f"acts: {a.action.value} on {where} ({a.failure_class}, confidence {a.confidence:.2f}){alone}"
    need = policy.thresholds.act.get(a.action)
    return (
        f"suspect only: proposes {a.action.value} on {where} ({a.failure_class}) but confidence "
        f"{a.confidence:.2f} is below its threshold {float(need or 1):.2f}: needs corroboration"
    )


def _nvidia_xid(code: int) -> dict[str, Any]:
    e = xid_catalog().xids.get(code)
    if e is None:
        return {"xid": code, "listed": False}
    out: dict[str, Any] = {"xid": code, **e.model_dump(exclude={"product"}, exclude_none=True)}
    return out


def _finding_text(f: KernelFinding) -> str:
    if f.kind == "xid":
        mig = f", MIG GPU instance {f.gpu_instance}" if f.gpu_instance is not None else ""
        who = f", pid {f.pid}" if f.pid is not None else ""
        printed = " (printed as text, no Xid number)" if f.form == "text" else ""
        return f"Xid {f.xid} on PCI {f.bus_id or '?'}{who}{mig}{printed}"
    if f.kind == "sxid":
        sev = {True: "fatal", False: "non-fatal", None: "continuation line"}[f.fatal]
        link = f", link {f.link}" if f.link is not None else ""
        origin = "fabric-manager log" if f.form == "fm" else "kernel log"
        return f"SXid {f.xid} ({sev}{link}) on NVSwitch {f.bus_id or '?'} from the {origin}"
    where = f" on PCI {f.bus_id}" if f.bus_id else ""
    return f"driver/kernel fault '{f.kind}'{where}"


def explain_line(text: str, policy: Policy, cat: Catalog) -> Explanation:
    """One kernel/fabric-manager line (or a joined multi-line driver message)."""
    f = parse_kernel_line(text)
    if f is None:
        return Explanation(text, "not recognised: no Xid, SXid or known driver fault")
    st = DetectState(NODE)
    if f.bus_id:
        st.bus_to_gpu = {f.bus_id: 0}
    ev = _event("node.kernel", {"line": text[:8192]})
    detect(st, ev, cat, ev.time.timestamp())
    out = Explanation(text, _finding_text(f), outcome=_outcome(st, ev.time.timestamp(), policy))
    if f.kind == "xid" and f.xid is not None:
        r = read_xid(cat, f.xid, f.message)
        out.nvidia = {**_nvidia_xid(f.xid), "applies": r.resolution}
        out.reading = {"rule": r.rule, **_signal(r.signal)}
        out.source = XID_SOURCE
    elif f.kind == "sxid" and f.xid is not None:
        entry = sxid_catalog().sxids.get(f.xid)
        out.nvidia = {"sxid": f.xid, **(entry.model_dump(exclude_none=True) if entry else {"listed": False})}
        if f.fatal is not None:
            r = read_sxid(cat, f.xid, f.fatal, f.link)
            out.nvidia["applies"] = r.resolution
            out.reading = {"rule": r.rule, **_signal(r.signal)}
        out.source = (
            "NVIDIA Fabric Manager user guide (SXids), NVIDIA/NVSentinel, detectors/nvidia_sxids.yaml"
        )
    else:
        sig = cat.kernel_patterns[f.kind]
        out.reading = _signal(sig)
        out.source = cat.sources[sig.source]
    if f.bus_id and "GPU 0" in out.outcome:
        out.outcome = out.outcome.replace("GPU 0", f"the GPU at {f.bus_id}")
    return out


def _signal(sig: Any) -> dict[str, Any]:
    keep = ("name", "domain", "weight", "decisive", "action", "application", "sympathetic", "informational")
    return {k: getattr(sig, k).value if hasattr(getattr(sig, k), "value") else getattr(sig, k) for k in keep}


def explain_scrape(text: str, policy: Policy, cat: Catalog) -> list[Explanation]:
    """One dcgm-exporter scrape: its gpu.sample per node and the Xids it reports, read by the detectors."""
    scrape = parse_scrape(text, NODE)
    collector = DcgmCollector("explain", node=NODE, fetch=lambda _url, _t: text)
    events = [_event(e["type"], e["data"]) for e in collector.poll(0.0)]
    st = DetectState(NODE)
    for e in events:
        detect(st, e, cat, e.time.timestamp())
    skipped = sum(scrape.unused.values())
    gpus = sorted({i for g in scrape.nodes.values() for i in g})
    head = Explanation(
        "(dcgm-exporter scrape)",
        f"{len(gpus)} GPU(s) on {len(scrape.nodes) or 1} node(s); {skipped} series skipped "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(scrape.unused.items())) or 'none'}); "
        f"missing field groups: {', '.join(collector.missing) or 'none'}",
        outcome=_outcome(st, T0.timestamp(), policy, "no evidence: every reading is within bounds"),
        source="NVIDIA dcgm-exporter counters (docs.nvidia.com/datacenter/dcgm), agents.collect.dcgm",
    )
    out = [head]
    for gpus_of_node in scrape.nodes.values():
        for g in gpus_of_node.values():
            for unit in (g.device, *g.instances.values()):
                for code in sorted({*unit.xid_counts, *([unit.xid_last] if unit.xid_last else [])}):
                    x = _event("gpu.xid", {"gpu": g.index, "xid": code})
                    xs = DetectState(NODE)
                    detect(xs, x, cat, x.time.timestamp())
                    r = read_xid(cat, code, "")
                    out.append(
                        Explanation(
                            f"Xid {code} reported for GPU {g.index} by the exporter",
                            f"Xid {code} on GPU {g.index}",
                            {**_nvidia_xid(code), "applies": r.resolution},
                            {"rule": r.rule, **_signal(r.signal)},
                            _outcome(xs, x.time.timestamp(), policy),
                            XID_SOURCE,
                        )
                    )
    return out


def is_scrape(text: str) -> bool:
    return "DCGM_FI_" in text or "DCGM_EXP_" in text


def explain_text(text: str, policy: Policy, cat: Catalog) -> list[Explanation]:
    """Whatever was pasted: a scrape, or kernel/SXid/fabric-manager lines (multi-line messages joined
    exactly as the kernel collector joins them)."""
    if is_scrape(text):
        return explain_scrape(text, policy, cat)
    joiner = MessageJoiner()
    lines = [j for raw in text.splitlines() if raw.strip() for j in joiner.feed((raw.rstrip(), None, None))]
    lines += joiner.flush()
    return [explain_line(line, policy, cat) for line, _, _ in lines]
