"""Kernel log collector: node.kernel for GPU-relevant lines from a file, /dev/kmsg or journald.

Only a cheap prefilter runs here (NVRM, Xid, SXid, NVSwitch, ECC, MCE, "fallen off the bus", hung tasks,
soft lockups, ...); parsing a line into a fault is the detectors' job, so every line that could matter is
forwarded verbatim and the node stage stays the one place that interprets kernel text. The one exception
is joining: the driver prints "The NVIDIA GPU <bus> ... has fallen off the bus" over three lines, and
only the first names the GPU, so those lines are forwarded as one event.

Three readers share one interface (``read(deadline) -> list[(line, ids)]``):
- :class:`FileFollower` follows a log file across rotation (new inode) and truncation, like ``tail -F``;
- :class:`KmsgReader` reads /dev/kmsg records ``pri,seq,ts,flags;message`` (ids from boot id + seq,
  so re-reading the ring buffer after a restart produces the same event ids);
- :class:`JournalReader` runs ``journalctl -k -f -o json`` and reads its JSON lines.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import select
import subprocess
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

import orjson

from agents.collect.base import CollectorUnavailable, Event
from agents.collect.gpu_fields import SYSFS_PCI, pci_gpus
from agents.collect.inventory import InventoryConfig, inventory_event
from detectors.kernel_parser import starts_fallen_off_message
from streams.kafka.producer import build_event

SOURCE = "collect.kernel"
MAX_LINE = 8192
INVENTORY_EVERY_S = 600.0

PREFILTER = re.compile(
    r"NVRM|NVSwitch|\bS?Xid\b|nvidia-(?:nvswitch|peermem|uvm|modeset)|fallen off the bus|"
    r"\bECC\b|EDAC|\bMCE\b|[Mm]achine [Cc]heck|mce: |Hardware Error|\bPCIe Bus Error\b|\bAER\b|"
    r"GPU has fallen|NVLink|nvidia-fabricmanager|"
    # kernel/hung_task.c and kernel/watchdog.c: a hung runtime or a stuck driver thread (detectors read both).
    r"blocked for more than \d+ seconds|soft lockup - CPU",
)
MAX_JOINED = 4
"""Lines of one multi-line driver message held for joining, at most."""


def interesting(line: str) -> bool:
    """Cheap prefilter for GPU/hardware kernel lines.

    >>> interesting("NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus.")
    True
    >>> interesting("EXT4-fs (sda1): mounted filesystem")
    False
    """
    return PREFILTER.search(line) is not None


Line = tuple[str, str | None, datetime | None]


class MessageJoiner:
    """Holds the first line of the driver's multi-line "fallen off the bus" message and the NVRM lines
    after it, and gives them back as one line (id and time of the first), so the bus id stays with it.

    >>> j = MessageJoiner()
    >>> j.feed(("NVRM: The NVIDIA GPU 0000:18:00.0", None, None))
    []
    >>> j.feed(("NVRM: (PCI ID: 10de:2901) installed in this system has", None, None))
    []
    >>> [text] = j.feed(("NVRM: fallen off the bus and is not responding to commands.", None, None))
    >>> text[0].count("NVRM")
    3
    """

    def __init__(self) -> None:
        self._held: list[Line] = []

    def feed(self, item: Line) -> list[Line]:
        out: list[Line] = []
        if self._held:
            if "NVRM:" in item[0] and len(self._held) < MAX_JOINED:
                self._held.append(item)
                return [self._joined()] if "fallen off the bus" in item[0] else []
            out.append(self._joined())
        if starts_fallen_off_message(item[0]):
            self._held = [item]
            return out
        return [*out, item]

    def flush(self) -> list[Line]:
        return [self._joined()] if self._held else []

    def _joined(self) -> Line:
        text = "\n".join(line for line, _, _ in self._held)
        _, stable_id, when = self._held[0]
        self._held = []
        return text, stable_id, when


class Reader(Protocol):
    def read(self, deadline: float) -> list[tuple[str, str | None, datetime | None]]:
        """Lines available by ``deadline``: (text, stable id or None, event time or None)."""
        ...

    def close(self) -> None: ...


class FileFollower:
    """``tail -F`` for one file: starts at the end (or the start), survives rotation and truncation."""

    def __init__(self, path: str | Path, from_start: bool = False, poll_s: float = 0.2) -> None:
        self.path = Path(path)
        self.poll_s = poll_s
        self._f: IO[bytes] | None = None
        self._ino: int | None = None
        self._partial = b""
        self._open(seek_end=not from_start)

    def _open(self, seek_end: bool) -> None:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except FileNotFoundError:
            self._f = None
            return
        if seek_end:
            f.seek(0, os.SEEK_END)
        self._f, self._ino, self._partial = f, os.fstat(f.fileno()).st_ino, b""

    def _drain(self) -> list[bytes]:
        if self._f is None:
            return []
        data = self._partial + self._f.read()
        *lines, self._partial = data.split(b"\n")
        return lines

    def _check_rotation(self) -> list[bytes]:
        """New inode at the path: finish the old file, then read the new one from its start.
        Same inode but smaller than our offset: truncated in place, start over."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []  # rotated away, new file not created yet: keep the old handle
        if self._f is None:
            self._open(seek_end=False)
            return []
        if st.st_ino != self._ino:
            tail = self._drain()
            if self._partial:
                tail.append(self._partial)
            self._f.close()
            self._open(seek_end=False)
            return tail
        if st.st_size < self._f.tell():
            self._f.seek(0)
            self._partial = b""
        return []

    def read(self, deadline: float) -> list[tuple[str, str | None, datetime | None]]:
        while True:
            lines = self._check_rotation() + self._drain()
            if lines or time.monotonic() >= deadline:
                return [(b.decode("utf-8", "replace").rstrip("\r"), None, None) for b in lines if b.strip()]
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def parse_kmsg_record(record: bytes) -> tuple[int, int, int, str] | None:
    """``pri,seq,ts_us,flags;message\\n KEY=value...`` → (priority, seq, µs since boot, message).

    >>> parse_kmsg_record(b"3,1234,56789012,-;NVRM: Xid (PCI:0000:3b:00): 48, pid=0\\n SUBSYSTEM=pci")
    (3, 1234, 56789012, 'NVRM: Xid (PCI:0000:3b:00): 48, pid=0')
    """
    head, sep, rest = record.partition(b";")
    fields = head.split(b",")
    if not sep or len(fields) < 3:
        return None
    try:
        pri, seq, ts = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    message = rest.split(b"\n", 1)[0].decode("utf-8", "replace")
    # /dev/kmsg escapes non-printable bytes as \xNN; keep them as sent.
    return pri & 7, seq, ts, message


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return "unknown-boot"


class KmsgReader:
    """/dev/kmsg: one record per read(); starts at the oldest record so a restart misses nothing,
    and stable ids (boot id + sequence number) make the replayed ones duplicates, not new faults."""

    def __init__(self, path: str = "/dev/kmsg") -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as err:
            raise CollectorUnavailable(
                f"cannot read {path}: {err.strerror}; run as root (or with CAP_SYSLOG), "
                "or use --journald / --file"
            ) from err
        self._boot = _boot_id()
        self._boot_epoch = time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)

    def read(self, deadline: float) -> list[tuple[str, str | None, datetime | None]]:
        out: list[tuple[str, str | None, datetime | None]] = []
        while True:
            try:
                record = os.read(self._fd, MAX_LINE)
            except BlockingIOError:
                if out or time.monotonic() >= deadline:
                    return out
                select.select([self._fd], [], [], max(0.0, deadline - time.monotonic()))
                continue
            except OSError as err:
                if err.errno == errno.EPIPE:  # ring buffer overwrote records we had not read: go on
                    continue
                raise
            parsed = parse_kmsg_record(record)
            if parsed is None:
                continue
            _, seq, ts_us, message = parsed
            when = datetime.fromtimestamp(self._boot_epoch + ts_us / 1e6, UTC)
            out.append((message, f"{self._boot}-{seq}", when))

    def close(self) -> None:
        os.close(self._fd)


class JournalReader:
    """``journalctl -k -f -o json`` (the command is injectable for tests and other units)."""

    def __init__(self, command: Sequence[str] = ("journalctl", "-k", "-f", "-o", "json", "-n", "0")) -> None:
        try:
            self._proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except FileNotFoundError as err:
            raise CollectorUnavailable(f"{command[0]} not found: use --kmsg or --file instead") from err
        assert self._proc.stdout is not None
        self._out = self._proc.stdout
        os.set_blocking(self._out.fileno(), False)
        self._partial = b""

    def read(self, deadline: float) -> list[tuple[str, str | None, datetime | None]]:
        while True:
            chunk = self._out.read()
            if chunk:
                *lines, self._partial = (self._partial + chunk).split(b"\n")
                records = [r for r in (self._record(line) for line in lines) if r is not None]
                if records:
                    return records
            if time.monotonic() >= deadline:
                return []
            if chunk == b"" and self._proc.poll() is not None:
                raise RuntimeError(f"journalctl exited with {self._proc.returncode}")
            select.select([self._out], [], [], max(0.0, deadline - time.monotonic()))

    @staticmethod
    def _record(line: bytes) -> tuple[str, str | None, datetime | None] | None:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        msg = obj.get("MESSAGE") if isinstance(obj, dict) else None
        if isinstance(msg, list):  # journald sends non-UTF-8 messages as byte arrays
            msg = bytes(b for b in msg if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
        if not isinstance(msg, str):
            return None
        when = None
        with contextlib.suppress(KeyError, TypeError, ValueError):
            when = datetime.fromtimestamp(int(obj["__REALTIME_TIMESTAMP"]) / 1e6, UTC)
        cursor = obj.get("__CURSOR")  # long and opaque: its digest is the stable id
        stable = hashlib.sha1(str(cursor).encode()).hexdigest()[:20] if cursor else None
        return msg, stable, when

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._out.close()


class KernelLogCollector:
    """Forwards prefiltered kernel lines as node.kernel events, with the node's PCI view of its GPUs
    as node.inventory (first round, then every 10 minutes) so the stream stands on its own."""

    name = "kernel"

    def __init__(
        self,
        node: str,
        reader: Reader,
        interval_s: float = 10.0,
        inventory: InventoryConfig | None = None,
        sysfs_pci: Path = SYSFS_PCI,
    ) -> None:
        self.node = node
        self.reader = reader
        self.interval_s = interval_s
        self.inventory = inventory or InventoryConfig()
        self.sysfs_pci = sysfs_pci
        self.forwarded = 0
        self.skipped = 0
        self._last_inventory: float | None = None
        self._joiner = MessageJoiner()

    def poll(self, deadline: float) -> Iterator[Event]:
        now = time.monotonic()
        if self._last_inventory is None or now - self._last_inventory >= INVENTORY_EVERY_S:
            self._last_inventory = now
            bus_ids = pci_gpus(self.sysfs_pci)
            yield inventory_event(SOURCE, self.node, self.inventory, gpus=len(bus_ids), gpu_bus_ids=bus_ids)
        while True:
            batch = [out for item in self.reader.read(deadline) for out in self._joiner.feed(item)]
            done = time.monotonic() >= deadline
            if done:
                batch += self._joiner.flush()
            for line, stable_id, when in batch:
                if not line.strip() or not interesting(line):
                    self.skipped += 1
                    continue
                self.forwarded += 1
                event_id = f"{SOURCE}-{self.node}-{stable_id}" if stable_id else None
                yield build_event("node.kernel", SOURCE, self.node, {"line": line[:MAX_LINE]}, when, event_id)
            if done:
                return

    def nodes(self) -> list[str]:
        return [self.node]

    def close(self) -> None:
        self.reader.close()
