"""Kernel log collector: a file appended, rotated and truncated while followed; kmsg; journalctl."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from agents.collect.base import CollectorUnavailable
from agents.collect.kmsg import (
    FileFollower,
    JournalReader,
    KernelLogCollector,
    KmsgReader,
    parse_kmsg_record,
)
from schemas.events import NodeInventory, NodeKernel
from streams.kafka.producer import check

XID = "NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus."
NOISE = "EXT4-fs (nvme0n1p1): re-mounted. Quota mode: none."


def _lines(c: KernelLogCollector, wait_s: float = 0.0) -> list[str]:
    out = []
    for e in c.poll(time.monotonic() + wait_s):
        parsed = check(e)
        if isinstance(parsed, NodeInventory):
            continue
        assert isinstance(parsed, NodeKernel)
        out.append(parsed.data.line)
    return out


def _fake_pci(root: Path, devices: dict[str, tuple[str, str]]) -> Path:
    for name, (vendor, pci_class) in devices.items():
        (root / name).mkdir(parents=True)
        (root / name / "vendor").write_text(vendor + "\n")
        (root / name / "class").write_text(pci_class + "\n")
    return root


def test_inventory_comes_from_the_pci_bus_first(tmp_path: Path) -> None:
    pci = _fake_pci(
        tmp_path / "pci",
        {
            "0000:86:00.0": ("0x10de", "0x030200"),  # GPU (3D controller)
            "0000:3b:00.0": ("0x10de", "0x030200"),
            "0000:05:00.0": ("0x10de", "0x068000"),  # NVSwitch: a bridge, not a GPU
            "0000:00:1f.0": ("0x8086", "0x060100"),
        },
    )
    log = tmp_path / "kern.log"
    log.write_text("")
    c = KernelLogCollector("gpu01", FileFollower(log), sysfs_pci=pci)
    first = check(next(iter(c.poll(time.monotonic()))))
    assert isinstance(first, NodeInventory)
    assert (first.data.gpus, first.data.gpu_bus_ids) == (2, ["0000:3b:00", "0000:86:00"])
    assert not [e for e in c.poll(time.monotonic()) if e["type"] == "node.inventory"]  # not every round
    c.close()


def _append(path: Path, *lines: str) -> None:
    with open(path, "a") as f:
        f.write("".join(f"{line}\n" for line in lines))


def test_follow_starts_at_end_and_forwards_only_gpu_lines(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    _append(log, "NVRM: old line before start")
    c = KernelLogCollector("gpu01", FileFollower(log, poll_s=0.01))
    assert _lines(c) == []
    _append(log, NOISE, XID, "[  12.3] nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal")
    assert _lines(c) == [XID, "[  12.3] nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal"]
    assert c.skipped == 1
    c.close()


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("")
    c = KernelLogCollector("gpu01", FileFollower(log, poll_s=0.01))
    with open(log, "a") as f:
        f.write("NVRM: Xid (PCI:0000:3b:00): 4")
    assert _lines(c) == []
    _append(log, "8, pid=1234, DBE")
    assert _lines(c) == ["NVRM: Xid (PCI:0000:3b:00): 48, pid=1234, DBE"]
    c.close()


def test_rotation_by_rename_reads_old_tail_then_new_file(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("")
    c = KernelLogCollector("gpu01", FileFollower(log, poll_s=0.01))
    _append(log, "NVRM: before rotation")
    assert _lines(c) == ["NVRM: before rotation"]
    _append(log, "NVRM: written just before rename")
    os.rename(log, tmp_path / "kern.log.1")
    # The path is missing for a moment: the old handle is still followed.
    assert _lines(c) == ["NVRM: written just before rename"]
    _append(tmp_path / "kern.log.1", "NVRM: late write by a logger still holding the old file")
    _append(log, "NVRM: first line of the new file", NOISE)
    assert _lines(c) == [
        "NVRM: late write by a logger still holding the old file",
        "NVRM: first line of the new file",
    ]
    _append(log, XID)
    assert _lines(c) == [XID]
    c.close()


def test_copytruncate_starts_over(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("")
    c = KernelLogCollector("gpu01", FileFollower(log, poll_s=0.01))
    _append(log, "NVRM: a long line that makes the file bigger than what follows it")
    assert len(_lines(c)) == 1
    with open(log, "w"):
        pass  # logrotate copytruncate
    _append(log, "mce: [Hardware Error]: CPU 3")
    assert _lines(c) == ["mce: [Hardware Error]: CPU 3"]
    c.close()


def test_follow_waits_until_deadline_for_new_lines(tmp_path: Path) -> None:
    import threading

    log = tmp_path / "kern.log"
    log.write_text("")
    c = KernelLogCollector("gpu01", FileFollower(log, poll_s=0.01))
    threading.Timer(0.1, _append, args=(log, XID)).start()
    t0 = time.monotonic()
    assert _lines(c, wait_s=0.4) == [XID]
    assert time.monotonic() - t0 >= 0.35
    c.close()


def test_kmsg_record_parse() -> None:
    assert parse_kmsg_record(b"4,99,1000,c;EDAC MC0: 1 CE memory read error\n SUBSYSTEM=edac") == (
        4,
        99,
        1000,
        "EDAC MC0: 1 CE memory read error",
    )
    assert parse_kmsg_record(b"garbage without separator") is None
    assert parse_kmsg_record(b"x,1,2,-;msg") is None


def test_kmsg_reader_on_this_kernel_gives_stable_ids() -> None:
    if not os.access("/dev/kmsg", os.R_OK):
        pytest.skip("/dev/kmsg not readable here")
    first = KmsgReader()
    second = KmsgReader()
    a = first.read(time.monotonic())
    b = second.read(time.monotonic())
    first.close()
    second.close()
    assert a and b
    ids_a = {i: line for line, i, _ in a}
    assert all(i in ids_a and ids_a[i] == line for line, i, _ in b[: len(a)] if i in ids_a)
    assert len(ids_a) == len(a)  # unique per record


def test_kmsg_unreadable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CollectorUnavailable, match="cannot read"):
        KmsgReader(str(tmp_path / "no-such-kmsg"))


def test_journal_reader_parses_journalctl_json(tmp_path: Path) -> None:
    script = tmp_path / "fake_journalctl.py"
    script.write_text(
        "import json, sys, time\n"
        f"print(json.dumps({{'MESSAGE': {XID!r}, '__CURSOR': 's=1;i=2',"
        " '__REALTIME_TIMESTAMP': '1700000000000000'}))\n"
        f"print(json.dumps({{'MESSAGE': {NOISE!r}, '__CURSOR': 's=1;i=3'}}))\n"
        "print(json.dumps({'MESSAGE': list(b'NVRM: GPU at PCI:0000:3b:00: GPU-x \\xff')}))\n"
        "sys.stdout.flush(); time.sleep(30)\n"
    )
    c = KernelLogCollector("gpu01", JournalReader([sys.executable, str(script)]))
    events = [check(e) for e in c.poll(time.monotonic() + 1)]
    c.close()
    lines = [e.data.line for e in events if isinstance(e, NodeKernel)]
    events = [e for e in events if isinstance(e, NodeKernel)]
    assert lines == [XID, "NVRM: GPU at PCI:0000:3b:00: GPU-x \ufffd"]
    assert events[0].time.timestamp() == 1_700_000_000
    assert events[0].id.startswith("collect.kernel-gpu01-")


def test_prefilter_keeps_the_hung_task_and_soft_lockup_lines_the_detectors_read(tmp_path: Path) -> None:
    # Real shapes: leptonai/gpud#117 (hung task behind a stuck GPU), leptonai/gpud cpu kmsg_matcher.go.
    hung = "[Sat Oct 12 18:38:44 2024] INFO: task cache_mgr_event:620917 blocked for more than 120 seconds."
    lockup = "[Sun Jan  5 18:28:55 2025] watchdog: BUG: soft lockup - CPU#18 stuck for 27s! [python3:2254956]"
    log = tmp_path / "kern.log"
    log.write_text("")
    c = KernelLogCollector("gpu01", FileFollower(log), sysfs_pci=tmp_path / "none")
    _lines(c)
    with open(log, "a") as f:
        f.write(f"{hung}\n{NOISE}\n{lockup}\n")
    assert _lines(c, 0.5) == [hung, lockup]
