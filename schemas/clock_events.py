"""GPU clock-event (throttle) reasons: the integer bitmask NVML and DCGM report, and its names.

NVML's ``nvmlDeviceGetCurrentClocksEventReasons`` and DCGM's ``DCGM_FI_DEV_CLOCKS_EVENT_REASONS``
(``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` before DCGM 3.3) are the same 64-bit mask. The bit meanings
are NVML's ``nvmlClocksEventReason*`` / ``nvmlClocksThrottleReason*`` constants as nvidia-ml-py
(``pynvml``) publishes them. The ``gpu.sample`` contract accepts either the mask or the names, and
stores names, so a consumer never needs the bit table.
"""

from __future__ import annotations

MAX_MASK = 2**64 - 1

# (bit, name): nvmlClocksEventReasonGpuIdle 0x1 ... DisplayClockSetting 0x100, and the throttle-only
# BoardLimit 0x200 and Reliability 0x400 (pynvml's nvmlClocksThrottleReason* list). Idle and
# application-clock settings are not faults but stay in the mask; detectors decide which names matter.
CLOCK_EVENT_BITS: tuple[tuple[int, str], ...] = (
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
_KNOWN = sum(bit for bit, _ in CLOCK_EVENT_BITS)


def clock_event_names(mask: int) -> list[str]:
    """Names of the set bits, in bit order; unknown bits become ``bit_0x...`` rather than vanish.

    >>> clock_event_names(0x8 | 0x40)
    ['hw_slowdown', 'hw_thermal']
    >>> clock_event_names(0x10000)
    ['bit_0x10000']
    >>> clock_event_names(-1)
    Traceback (most recent call last):
    ValueError: a clock-event mask is an unsigned 64-bit integer, got -1
    """
    if not 0 <= mask <= MAX_MASK:
        raise ValueError(f"a clock-event mask is an unsigned 64-bit integer, got {mask}")
    names = [name for bit, name in CLOCK_EVENT_BITS if mask & bit]
    names.extend(f"bit_{1 << i:#x}" for i in range(64) if mask & ~_KNOWN & (1 << i))
    return names
