"""NVRM / NVSwitch / ECC / MCE kernel lines → structured findings.

Driver versions print Xids in several shapes (with or without ``PCI:``, with or without
``pid=``/``name=``, 8-digit PCI domains from newer drivers, syslog or dmesg prefixes). The parser keys on
the stable parts only and returns ``None`` for lines it does not recognise: callers count those, never
raise, because an unseen variant must not stop a stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BUS = r"(?:PCI:)?(?P<bus>[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)"
_XID = re.compile(
    r"NVRM: Xid \(" + _BUS + r"\): (?P<xid>\d+)(?:, pid=(?P<pid>'?<?[\w-]+>?'?))?(?:, name=(?P<name>[^,]*))?"
    r"(?:, )?(?P<msg>.*)$"
)
_SXID = re.compile(r"SXid \(" + _BUS + r"\): (?P<xid>\d+)")
_FALLEN = re.compile(
    r"NVRM: GPU(?: at)? (?:PCI:)?(?P<bus>[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}"
    r"(?:\.[0-7])?)[^\n]*fallen off the bus",
    re.IGNORECASE,
)
_REMAP_FAIL = re.compile(r"row remap(?:ping|per)?[^\n]*fail", re.IGNORECASE)
_ECC_UNCORR = re.compile(r"(?:uncorrectable|double bit|DBE)[^\n]*(?:ECC|error)", re.IGNORECASE)
_MCE = re.compile(r"\bmce: \[Hardware Error\]|Machine check events logged", re.IGNORECASE)
# kernel/hung_task.c: "INFO: task %s:%d blocked for more than %ld seconds." - a hung runtime or kubelet.
_HUNG = re.compile(r"\btask (?P<comm>\S+):\d+ blocked for more than \d+ seconds")
_BUS_ANY = re.compile(r"(?:PCI:)?([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2})")


@dataclass(frozen=True, slots=True)
class KernelFinding:
    kind: str
    """xid | sxid | row_remap_failure | ecc_uncorrectable | mce"""
    bus_id: str | None = None
    xid: int | None = None
    pid: int | None = None
    process: str | None = None
    message: str = ""


def normalize_bus_id(bus: str) -> str:
    """``00000000:3B:00.0`` / ``0000:3b:00`` / ``3b:00.0`` → ``0000:3b:00`` (domain:bus:device)."""
    b = bus.lower().split(".")[0]
    parts = b.split(":")
    if len(parts) == 2:
        parts = ["0000", *parts]
    domain = parts[0][-4:].rjust(4, "0")
    return f"{domain}:{parts[1]}:{parts[2]}"


def _pid(raw: str | None) -> int | None:
    if raw is None:
        return None
    digits = raw.strip("'<>")
    return int(digits) if digits.isdigit() else None


def parse_kernel_line(line: str) -> KernelFinding | None:
    """Recognise one kernel log line; ``None`` if it says nothing we act on."""
    if "Xid" in line:
        m = _SXID.search(line)
        if m:
            return KernelFinding("sxid", normalize_bus_id(m["bus"]), int(m["xid"]), message=line[m.end() :])
        m = _XID.search(line)
        if m:
            name = (m["name"] or "").strip() or None
            return KernelFinding(
                "xid",
                normalize_bus_id(m["bus"]),
                int(m["xid"]),
                _pid(m["pid"]),
                None if name in (None, "<unknown>") else name,
                (m["msg"] or "").strip(),
            )
    if "fallen off the bus" in line.lower():
        m = _FALLEN.search(line)
        bus = normalize_bus_id(m["bus"]) if m else _first_bus(line)
        return KernelFinding("xid", bus, 79, message="GPU has fallen off the bus")
    if _REMAP_FAIL.search(line):
        return KernelFinding("row_remap_failure", _first_bus(line), message=line.strip())
    if "NVRM" in line and _ECC_UNCORR.search(line):
        return KernelFinding("ecc_uncorrectable", _first_bus(line), message=line.strip())
    if _MCE.search(line):
        return KernelFinding("mce", message=line.strip())
    if "blocked for more than" in line and _HUNG.search(line):
        return KernelFinding("hung_task", message=line.strip())
    return None


def _first_bus(line: str) -> str | None:
    m = _BUS_ANY.search(line)
    return normalize_bus_id(m[1]) if m else None
