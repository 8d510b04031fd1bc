"""GPU vocabulary shared by the NVML and dcgm-exporter collectors: throttle reasons and PCI bus ids.

Both sources report the same NVML clock-event bitmask (DCGM_FI_DEV_CLOCK_THROTTLE_REASONS is that
mask), and both name GPUs by PCI bus id in different spellings; one mapping keeps them comparable.
"""

from __future__ import annotations

import re
from pathlib import Path

# nvmlClocksEventReason* bits (nvml.h). Idle and application-clock settings are not faults but are
# kept so a consumer sees the whole mask; detectors decide which names matter.
THROTTLE_BITS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal"),
    (0x040, "hw_thermal"),
    (0x080, "hw_power_brake"),
    (0x100, "display_clock_setting"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)

_BUS_ID = re.compile(r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})(?:\.[0-7])?$")


def throttle_names(mask: int) -> list[str]:
    """Names of the set bits, in bit order; unknown bits become ``bit_0x...`` rather than vanish.

    >>> throttle_names(0x8 | 0x40)
    ['hw_slowdown', 'hw_thermal']
    >>> throttle_names(0x10000)
    ['bit_0x10000']
    """
    names = [name for bit, name in THROTTLE_BITS if mask & bit]
    known = 0
    for bit, _ in THROTTLE_BITS:
        known |= bit
    names.extend(f"bit_{1 << i:#x}" for i in range(64) if mask & ~known & (1 << i))
    return names


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
