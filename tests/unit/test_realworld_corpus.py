"""Real inputs from public sources, read the way their published references read them.

The shared corpus (../shared/realworld/{kernel,sxid,kmsg_records,catalog}.jsonl: kernel, SXid and
/dev/kmsg lines quoted from leptonai/gpud fixtures and NVIDIA's catalog tables) and this repository's
own cases (tests/corpus/extra_cases.jsonl: lines quoted in NVIDIA driver, operator and device-plugin
issue threads) each name their source and the reference's interpretation. At least 95% of each family
must be read as the reference reads it; the rest are listed, with reasons, in tests/corpus/misreads.yaml.
Every line also goes through the kernel collector and the detectors: none may raise.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.collect.kmsg import KernelLogCollector, parse_kmsg_record
from detectors.catalog import default_catalog
from detectors.driver_faults import DRIVER_FAULTS
from detectors.kernel_parser import KernelFinding, parse_kernel_line
from detectors.nvidia_catalog import NVIDIA_RUNG, PRODUCT_RUNG, xid_catalog
from detectors.state import DetectState
from detectors.step import detect
from detectors.xid_reading import recovery_target
from schemas.events import NodeKernel
from schemas.gpu_recovery import recovery_action_name
from streams.kafka.producer import check

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared" / "realworld"
CORPUS = ROOT / "tests" / "corpus"
FAMILIES = {
    "kernel": "kernel.jsonl",
    "sxid": "sxid.jsonl",
    "kmsg_record": "kmsg_records.jsonl",
    "catalog": "catalog.jsonl",
}
MISREADS: dict[str, str] = yaml.safe_load((CORPUS / "misreads.yaml").read_text()) or {}
NONXID = {kind for kind, _ in DRIVER_FAULTS} | {"nvidia_soft_lockup"}
NODE = {"hung_task", "soft_lockup", "mce"}
CAT = default_catalog()


def _cases(family: str) -> list[dict[str, Any]]:
    path = SHARED / FAMILIES[family]
    if not path.exists():
        pytest.skip(f"{path} (the shared real-world corpus) is not present")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    extra = [
        json.loads(line) for line in (CORPUS / "extra_cases.jsonl").read_text().splitlines() if line.strip()
    ]
    return rows + [c for c in extra if c["family"] == family]


def _kind(f: KernelFinding | None) -> str:
    if f is None:
        return "none"
    if f.kind == "xid":
        return "xid79_text" if f.form == "text" else "xid"
    if f.kind in NONXID:
        return "nonxid_fault"
    return "node_fault" if f.kind in NODE else f.kind


def _read_line(raw: str, expected: dict[str, Any]) -> str | None:
    """Why our reading of ``raw`` differs from ``expected`` (None when it agrees)."""
    f = parse_kernel_line(raw)
    if _kind(f) != expected["kind"]:
        return f"read as {_kind(f)}, reference says {expected['kind']}"
    if f is None:
        return None
    got = {
        "xid": f.xid,
        "sxid": f.xid,
        "bus": f.bus_id,
        "pid": f.pid,
        "name": f.process,
        "fatal": f.fatal,
        "link": f.link,
        "fault": f.kind,
        "gpu_instance": f.gpu_instance,
        "recovery_action": recovery_action_name(to)
        if (to := recovery_target(f.message)) is not None
        else None,
    }
    for field, value in expected.items():
        if field in got and got[field] != value:
            return f"{field}: read {got[field]!r}, reference says {value!r}"
    return None


def _read_kmsg(raw: str, expected: dict[str, Any]) -> str | None:
    parsed = parse_kmsg_record(raw.encode())
    if parsed is None:
        return "record not parsed"
    pri, seq, ts, message = parsed
    if (pri, seq, ts, message) != (
        expected["priority"],
        expected["seq"],
        expected["ts_us"],
        expected["message"],
    ):
        return f"record read as {(pri, seq, ts, message)}"
    finding = _kind(parse_kernel_line(message))
    return (
        None if finding == expected["finding"] else f"finding {finding}, reference says {expected['finding']}"
    )


def _read_catalog(case: dict[str, Any]) -> str | None:
    ref = case["references"]["nvidia_catalog"]
    e = xid_catalog().xids.get(case["xid"])
    if e is None:
        return "not in the catalog"
    ours, nvidia = (e.immediate, e.investigatory), (ref["immediate"], ref["investigatory"])
    if ours != nvidia:
        return f"resolution {ours}, NVIDIA says {nvidia}"
    sig = CAT.xid(case["xid"])
    costlier = PRODUCT_RUNG[sig.action] > NVIDIA_RUNG[e.immediate]
    if not (sig.informational or sig.application) and costlier and not e.deviation:
        return f"action {sig.action.value} costlier than NVIDIA's {e.immediate}"
    return None


def _misread(case: dict[str, Any]) -> str | None:
    family = case["family"]
    if family == "catalog":
        return _read_catalog(case)
    if family == "kmsg_record":
        return _read_kmsg(case["raw"], case["expected"])
    return _read_line(case["raw"], case["expected"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_is_read_as_its_reference_reads_it(family: str) -> None:
    cases = _cases(family)
    wrong = {c["id"]: why for c in cases if (why := _misread(c)) is not None}
    agreement = 1 - len(wrong) / len(cases)
    assert agreement >= 0.95, (family, wrong)
    listed = {k: v for k, v in MISREADS.items() if k in {c["id"] for c in cases}}
    assert set(wrong) == set(listed), wrong


class _Lines:
    """A kernel-log reader over fixed lines (the real ones), as the collector's Reader protocol."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def read(self, deadline: float) -> list[tuple[str, str | None, datetime | None]]:
        out: list[tuple[str, str | None, datetime | None]] = [(line, None, None) for line in self.lines]
        self.lines = []
        return out

    def close(self) -> None:
        pass


def _all_real_lines() -> list[str]:
    lines: list[str] = []
    for family in ("kernel", "sxid"):
        for c in _cases(family):
            lines += c["raw"].split("\n")
    for c in _cases("kmsg_record"):
        parsed = parse_kmsg_record(c["raw"].encode())
        assert parsed is not None
        lines.append(parsed[3])
    return lines


def test_no_real_line_makes_the_collector_or_the_detectors_raise() -> None:
    lines = _all_real_lines()
    collector = KernelLogCollector("gpu01", _Lines(lines), sysfs_pci=ROOT / "no-such-sysfs")
    events = [check(e) for e in collector.poll(time.monotonic())]
    kernel = [e for e in events if isinstance(e, NodeKernel)]
    # The three lines of the multi-line "fallen off the bus" message arrive as one event, bus id kept.
    joined = [e for e in kernel if "\n" in e.data.line]
    assert len(joined) == 1 and "0000:18:00.0" in joined[0].data.line
    # Every real line passes the prefilter (hung tasks and soft lockups included): none is dropped.
    assert collector.skipped == 0 and len(kernel) == len(lines) - 2
    st = DetectState("gpu01")
    for e in kernel:
        detect(st, e, CAT, e.time.timestamp())
