"""What the NVML and dcgm-exporter collectors share: PCI bus ids and per-field validation.

Both sources name GPUs by PCI bus id in different spellings; one mapping keeps them comparable. Both
must turn a reading the contract refuses into a valid one minus the bad field (counted), never into
a dead-lettered scrape. Their shared clock-event bitmask is decoded by :mod:`schemas.clock_events`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.events import GpuReading

_BUS_ID = re.compile(r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})(?:\.[0-7])?$")


def valid_reading(fields: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """One GPU's fields made valid for the ``gpu.sample`` contract by dropping the fields it refuses.

    The pipeline dead-letters an event whole, so one absurd value (a temperature of 644245923 that
    an exporter once reported) would cost the node its whole scrape; a collector drops that field
    instead, to ``None``/absent, and reports its name so the caller counts it. Returns ``(None, ...)``
    when the GPU itself is unusable (its index is refused).

    >>> valid_reading({"index": 0, "temp_c": 644245923.0, "util": 50.0})
    ({'index': 0, 'util': 50.0}, ['temp_c'])
    >>> valid_reading({"index": 99})
    (None, ['index'])
    """
    kept = dict(fields)
    dropped: list[str] = []
    while True:
        try:
            GpuReading.model_validate(kept)
        except ValidationError as err:
            bad = {str(e["loc"][0]) for e in err.errors() if e["loc"]} or {"index"}
            if "index" in bad:
                return None, [*dropped, "index"]
            dropped.extend(sorted(bad))
            kept = {k: v for k, v in kept.items() if k not in bad}
            continue
        return kept, dropped


def bus_id(domain: int, bus: int, device: int) -> str:
    """The inventory spelling of a PCI address: 4-digit domain, lower case, no function.

    >>> bus_id(0, 0x3B, 0)
    '0000:3b:00'
    """
    return f"{domain & 0xFFFF:04x}:{bus:02x}:{device:02x}"


def normalize_bus_id(text: str) -> str | None:
    """Any NVML/DCGM/sysfs spelling (``00000000:3B:00.0``, ``0000:3b:00.0``, ``3b:00``) → ``0000:3b:00``.

    >>> normalize_bus_id("00000000:3B:00.0")
    '0000:3b:00'
    >>> normalize_bus_id("not a bus id") is None
    True
    """
    m = _BUS_ID.match(text.strip())
    if not m:
        return None
    return bus_id(int(m.group(1) or "0", 16), int(m.group(2), 16), int(m.group(3), 16))


NVIDIA_VENDOR = 0x10DE
_DISPLAY_CLASSES = (0x0300, 0x0302)  # VGA controller, 3D controller (NVSwitch bridges are 0x0680)
SYSFS_PCI = Path("/sys/bus/pci/devices")


def pci_gpus(root: Path = SYSFS_PCI) -> list[str]:
    """NVIDIA GPUs on the PCI bus, by bus id in bus order (NVML's default index order), driver or not.

    The kernel-log collector has no NVML; this is its hardware view for node.inventory, and it still
    counts a GPU whose driver failed to load.
    """
    found = []
    for dev in sorted(root.glob("*")) if root.is_dir() else []:
        try:
            vendor = int((dev / "vendor").read_text().strip(), 16)
            pci_class = int((dev / "class").read_text().strip(), 16) >> 8
        except (OSError, ValueError):
            continue
        bus = normalize_bus_id(dev.name)
        if vendor == NVIDIA_VENDOR and pci_class in _DISPLAY_CLASSES and bus is not None:
            found.append(bus)
    return sorted(found)
