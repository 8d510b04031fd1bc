"""One Xid or SXid line read the way NVIDIA's catalog reads it, including the per-line rules.

Most Xids mean one thing whatever the line says. For some NVIDIA gives per-line rules, applied here:
- NVLink5 Xids 144-150 print a unit and a severity: Fatal / Link Fatal → RESET_GPU, Non-fatal → IGNORE;
- Xid 154 names the driver's new recovery action: read as the NVML recovery-action signal of the same
  name (one source, one slot); back to None clears it;
- Xids 94/95 print what was contained or not; 63 after a 48 is the row-remap step of the 48 workflow;
- an Xid 45 that names the Xid it cleans up after is sympathetic to that one, never the job's fault;
- an SXid line says Fatal or Non-fatal and names the link: the line's own fatality decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detectors.catalog import Catalog, Signal
from detectors.nvidia_catalog import sxid_catalog, xid_catalog
from schemas.decision import ActionKind
from schemas.gpu_recovery import recovery_action_name

NVLINK5 = range(144, 151)
_SEVERITY = re.compile(r"\b(Link Fatal|Fatal|Non-?fatal)\b", re.IGNORECASE)
_UNIT = re.compile(r"^(?P<unit>[A-Z][A-Z0-9_/]*)\b")
_RECOVERY = re.compile(r"to 0x(?P<to>[0-9a-fA-F]+)(?: \((?P<name>[^)]*)\))?")
_CAUSED_BY = re.compile(r"caused by previous Xid (?P<xid>\d+)")
_CONTAINED = re.compile(r"\b(?P<kind>Contained|Uncontained): (?P<unit>[\w ]+?)\s*[(.]")
# The driver's error-containment report ends "RST: Yes|No, D-RST: Yes|No": whether it marked the GPU for
# a reset, or for a drain and reset (open-gpu-kernel-modules, _gpuGenerateErrorLog for GA100 and later).
_RESET_FLAGS = re.compile(r"RST: (?P<rst>Yes|No), D-RST: (?P<drst>Yes|No)")


@dataclass(frozen=True, slots=True)
class Reading:
    code: int
    key: str
    """Slot key: one per meaning, so a non-fatal and a fatal report of one Xid never share a slot."""
    signal: Signal
    resolution: str
    """NVIDIA's resolution that applies to this line."""
    rule: str
    """Which rule decided (``catalog``, or the per-line rule and what it read)."""
    clears: bool = False
    """Xid 154 back to None: the driver withdrew its earlier recovery action."""
    follows: int | None = None
    """The Xid this one says it was caused by (Xid 45: "caused by previous Xid N"): sympathetic to it."""


def _informational(sig: Signal) -> Signal:
    return sig.model_copy(
        update={"weight": 0.0, "decisive": False, "action": ActionKind.NONE, "informational": True}
    )


def read_xid(cat: Catalog, code: int, message: str) -> Reading:
    """The reading of Xid ``code`` printed with ``message`` (the text after pid/name)."""
    sig = cat.xid(code)
    key = f"xid.{code}"
    entry = xid_catalog().xids.get(code)
    resolution = entry.immediate if entry else "UNLISTED"
    if code in NVLINK5:
        return _nvlink5(cat, code, sig, key, message)
    if code == 154:
        return _recovery(cat, code, sig, key, message)
    if code in (94, 95):
        return _containment(code, sig, key, resolution, message)
    cause = _CAUSED_BY.search(message)
    if code == 45 and cause:
        # NVIDIA's Xid 45 workflow: not solo, follow the other Xid. The line names it: never the job's.
        first = int(cause["xid"])
        swept = sig.model_copy(update={"application": False, "sympathetic": True})
        return Reading(code, key, swept, resolution, f"cleanup after Xid {first}", follows=first)
    return Reading(code, key, sig, resolution, "catalog")


def _containment(code: int, sig: Signal, key: str, resolution: str, message: str) -> Reading:
    m = _CONTAINED.search(message)
    rule = f"{m['kind'].lower()} error in {m['unit'].strip()}" if m else "catalog"
    flags = _RESET_FLAGS.search(message)
    marked = flags is not None and "Yes" in (flags["rst"], flags["drst"])
    if code == 94 and marked:
        reset = sig.model_copy(update={"weight": 0.6, "action": ActionKind.GPU_RESET, "application": False})
        return Reading(
            code, f"{key}.reset", reset, resolution, f"{rule}; the driver marked the GPU for reset"
        )
    return Reading(code, key, sig, resolution, rule)


def _nvlink5(cat: Catalog, code: int, sig: Signal, key: str, message: str) -> Reading:
    m = _SEVERITY.search(message)
    if m is None:
        return Reading(code, key, sig, "WORKFLOW_NVLINK5_ERR", "no severity on the line: NVLink5 workflow")
    severity = m[1].lower()
    unit_m = _UNIT.match(message.strip())
    unit = unit_m["unit"] if unit_m else "?"
    resolution = xid_catalog().nvlink5.severities.get(severity, "WORKFLOW_NVLINK5_ERR")
    rule = f"NVLink5 unit {unit}, severity {m[1]}"
    if resolution == "IGNORE":
        return Reading(code, f"{key}.nonfatal", _informational(sig), resolution, rule)
    # A fatal link error is the source GPU's own fault, and NVIDIA's resolution (RESET_GPU) is the
    # remedy: decisive, so it acts on that node alone; peers log it non-fatal and stay quiet (above).
    reset = sig.model_copy(
        update={"weight": max(sig.weight, 0.9), "action": ActionKind.GPU_RESET, "decisive": True}
    )
    return Reading(code, f"{key}.fatal", reset, resolution, rule)


def recovery_target(message: str) -> int | None:
    """The recovery action an Xid 154 line changes to (nvmlGpuRecoveryAction_t value).

    >>> recovery_target("GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)")
    4
    """
    m = _RECOVERY.search(message)
    return int(m["to"], 16) if m else None


def _recovery(cat: Catalog, code: int, sig: Signal, key: str, message: str) -> Reading:
    """The action the line names is the driver's recovery action, the one NVML reports: the same
    ``recovery_<name>`` signal and slot, so the kernel line and the NVML field are one source."""
    to = recovery_target(message)
    if to is None:
        return Reading(code, key, sig, "XID_154", "recovery action not named on the line")
    name = recovery_action_name(to)
    rule = f"recovery action now {name}"
    if name == "none":
        return Reading(code, key, _informational(sig), "XID_154: none", rule, clears=True)
    follow = cat.samples.get(f"recovery_{name}")
    if follow is None:
        return Reading(code, key, sig, f"XID_154: {name}", f"{rule} (not in the catalog: Xid 154 workflow)")
    return Reading(code, f"recovery_{name}", follow, f"XID_154: {name}", rule)


def read_sxid(cat: Catalog, code: int, fatal: bool, link: int | None) -> Reading:
    """An SXid report line that states its fatality (continuation lines carry none and are not read)."""
    nv = sxid_catalog()
    entry = nv.sxids.get(code)
    name = entry.name if entry else f"SXid {code}"
    where = f" on link {link}" if link is not None else ""
    if not fatal:
        reading = nv.nonfatal_signal.model_dump(exclude_unset=True)
        sig = Signal(name=name, informational=True, source="nvidia-sxid", **reading)
        return Reading(code, f"sxid.{code}.nonfatal", sig, "IGNORE", f"non-fatal{where}")
    resolution = entry.immediate if entry and entry.immediate else "RESET_FABRIC"
    action = nv.immediate_actions[resolution]
    base = nv.fatal_signal.model_dump(exclude_unset=True)
    weight = base.pop("weight") if action != ActionKind.NONE else base.pop("weight") * 0.0
    sig = Signal(name=name, weight=weight, source="nvidia-sxid", **{**base, "action": action})
    if action == ActionKind.NONE:
        sig = _informational(sig)
    return Reading(code, f"sxid.{code}", sig, resolution, f"fatal{where}")
