"""NVRM / NVSwitch / fabric-manager / driver-fault kernel lines → structured findings.

Driver versions print Xids in several shapes (with or without ``PCI:``, with or without
``pid=``/``name=``, 8-digit PCI domains from newer drivers, a MIG ``GPU-I:``/``CI:`` suffix after the
bus id, syslog or dmesg prefixes). The parser keys on the stable parts only and returns ``None`` for
lines it does not recognise: callers count those, never raise, because an unseen variant must not stop
a stage. A message the driver prints over several lines ("The NVIDIA GPU <bus> ... has fallen off the
bus") is read whole when the collector joins it, and still read (without its bus id) line by line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detectors.driver_faults import match_driver_fault

_BUS_RE = r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?"
_BUS = r"(?:PCI:)?(?P<bus>" + _BUS_RE + r")"
# MIG: "NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, ..." (and "GPU-I:05 GPU-CI:01" on some drivers).
_MIG = r"(?:\s+GPU-I:(?P<gi>\d+))?(?:\s+(?:GPU-)?CI:(?P<ci>\d+))?"
_XID = re.compile(
    r"NVRM: Xid \(" + _BUS + _MIG + r"\): (?P<xid>\d+)(?:, pid=(?P<pid>'?<?[\w-]+>?'?))?"
    r"(?:, name=(?P<name>[^,]*))?(?:, )?(?P<msg>.*)$",
    re.DOTALL,
)
# "nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up"; the report's
# later lines ("Severity 1 Engine instance ...", "Data {...}") carry neither fatality nor link.
_SXID = re.compile(
    r"SXid \(" + _BUS + r"\): (?P<xid>\d+)(?:, (?P<sev>Fatal|Non-fatal))?(?:, Link (?P<link>\d+))?"
)
# nvidia-fabricmanager's log: "detected NVSwitch fatal error 20034 on fid 0 on NVSwitch pci bus id
# 00000000:86:00.0 physical id 3 port 33" (leptonai/gpud fabric-manager log_matcher.go fixtures).
_FM = re.compile(
    r"detected NVSwitch (?P<sev>fatal|non-fatal) error (?P<xid>\d+)(?: on fid \d+)?"
    r"(?: on NVSwitch pci bus id (?P<bus>" + _BUS_RE + r"))?(?: physical id \d+)?(?: port (?P<link>\d+))?"
)
_FALLEN_JOINED = re.compile(
    r"NVRM:\s+The NVIDIA GPU (?P<bus>" + _BUS_RE + r").*fallen off the bus", re.DOTALL
)
_FALLEN = re.compile(
    r"NVRM: GPU(?: at)? (?:PCI:)?(?P<bus>" + _BUS_RE + r")[^\n]*fallen off the bus", re.IGNORECASE
)
_FALLEN_FIRST = re.compile(r"NVRM: The NVIDIA GPU " + _BUS_RE + r"\s*$")
_REMAP_FAIL = re.compile(r"row remap(?:ping|per)?[^\n]*fail", re.IGNORECASE)
_ECC_UNCORR = re.compile(r"(?:uncorrectable|double bit|DBE)[^\n]*(?:ECC|error)", re.IGNORECASE)
_MCE = re.compile(r"\bmce: \[Hardware Error\]|Machine check events logged", re.IGNORECASE)
# kernel/hung_task.c: "INFO: task %s:%d blocked for more than %ld seconds." - a hung runtime or kubelet.
_HUNG = re.compile(r"\btask (?P<comm>\S+):\d+ blocked for more than \d+ seconds")
_BUS_ANY = re.compile(r"(?:PCI:)?([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2})")

NODE_LEVEL_KINDS = frozenset({"sxid", "mce", "hung_task", "soft_lockup", "peermem_invalid_context"})
"""Findings about the node (or its fabric) as a whole, even where the line names a PCI device."""


@dataclass(frozen=True, slots=True)
class KernelFinding:
    kind: str
    """xid | sxid | row_remap_failure | ecc_uncorrectable | mce | hung_task | a driver fault
    (see :mod:`detectors.driver_faults`)"""
    bus_id: str | None = None
    xid: int | None = None
    """The Xid, or the SXid for ``sxid`` findings."""
    pid: int | None = None
    process: str | None = None
    message: str = ""
    gpu_instance: int | None = None
    """MIG GPU instance named by the line (``GPU-I:``), if any."""
    fatal: bool | None = None
    """SXid fatality as the line states it; None on a report's continuation lines."""
    link: int | None = None
    form: str = "xid"
    """How the fault was printed: ``xid`` (numbered), ``text`` (Xid 79 without a number), ``fm``
    (fabric-manager log), ``line`` (anything else)."""


def normalize_bus_id(bus: str) -> str:
    """``00000000:3B:00.0`` / ``0000:3b:00`` / ``3b:00.0`` → ``0000:3b:00`` (domain:bus:device)."""
    b = bus.lower().split(".")[0]
    parts = b.split(":")
    if len(parts) == 2:
        parts = ["0000", *parts]
    domain = parts[0][-4:].rjust(4, "0")
    return f"{domain}:{parts[1]}:{parts[2]}"


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    digits = raw.strip("'<>")
    return int(digits) if digits.isdigit() else None


def starts_fallen_off_message(line: str) -> bool:
    """The first line of the driver's multi-line "fallen off the bus" message (collectors join it)."""
    return _FALLEN_FIRST.search(line) is not None


def _xid_finding(line: str) -> KernelFinding | None:
    m = _SXID.search(line)
    if m:
        sev = m["sev"]
        return KernelFinding(
            "sxid",
            normalize_bus_id(m["bus"]),
            int(m["xid"]),
            message=line[m.end() :].strip(", "),
            fatal=None if sev is None else sev == "Fatal",
            link=_int(m["link"]),
        )
    m = _XID.search(line)
    if m is None:
        return None
    name = (m["name"] or "").strip() or None
    return KernelFinding(
        "xid",
        normalize_bus_id(m["bus"]),
        int(m["xid"]),
        _int(m["pid"]),
        None if name in (None, "<unknown>") else name,
        (m["msg"] or "").strip(),
        gpu_instance=_int(m["gi"]),
    )


def parse_kernel_line(line: str) -> KernelFinding | None:
    """Recognise one kernel (or fabric-manager) log line; ``None`` if it says nothing we act on."""
    if "Xid" in line:
        found = _xid_finding(line)
        if found is not None:
            return found
    if "NVSwitch" in line and "error" in line:
        m = _FM.search(line)
        if m:
            return KernelFinding(
                "sxid",
                normalize_bus_id(m["bus"]) if m["bus"] else None,
                int(m["xid"]),
                message=line.strip(),
                fatal=m["sev"] == "fatal",
                link=_int(m["link"]),
                form="fm",
            )
    if "fallen off the bus" in line.lower():
        m = _FALLEN_JOINED.search(line) or _FALLEN.search(line)
        bus = normalize_bus_id(m["bus"]) if m else _first_bus(line)
        return KernelFinding("xid", bus, 79, message="GPU has fallen off the bus", form="text")
    fault = match_driver_fault(line)
    if fault is not None:
        return KernelFinding(fault, _first_bus(line), message=line.strip(), form="line")
    if _REMAP_FAIL.search(line):
        return KernelFinding("row_remap_failure", _first_bus(line), message=line.strip(), form="line")
    if "NVRM" in line and _ECC_UNCORR.search(line):
        return KernelFinding("ecc_uncorrectable", _first_bus(line), message=line.strip(), form="line")
    if _MCE.search(line):
        return KernelFinding("mce", message=line.strip(), form="line")
    if "blocked for more than" in line and _HUNG.search(line):
        return KernelFinding("hung_task", message=line.strip(), form="line")
    return None


def _first_bus(line: str) -> str | None:
    m = _BUS_ANY.search(line)
    return normalize_bus_id(m[1]) if m else None
