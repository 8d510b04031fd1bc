"""NVIDIA driver faults that print no Xid number: the line shapes, each with where it was seen.

Each pattern names a ``kernel_patterns`` signal of the catalog (what it weighs and which action clears
it lives there, as data). Order matters only where two could match one line: the first wins.

Sources of the shapes (real driver output quoted in public threads):
- ``RmInitAdapter failed!`` / ``rm_init_adapter failed``: NVIDIA/gpu-operator#1146 and #649,
  NVIDIA/open-gpu-kernel-modules#789 and #1230 (the GPU did not initialise; NVIDIA's nearest catalog
  entry is Xid 143, GPU_INIT_ERROR, resolved by RESET_GPU);
- GSP boot failures (``Cannot initialize GSP firmware RM``, ``_kgspBootGspRm: unexpected WPR2 already
  up``, ``failed to wait for GFW boot complete``): open-gpu-kernel-modules#1230, #789, #1058 (the driver
  itself says "the GPU is likely in a bad state and may need to be reset");
- ``NV_ERR_RESET_REQUIRED`` assertions: scitix/sichek#51, open-gpu-kernel-modules#1045;
- NVLink ``postRxDetLinkMask failed!``: leptonai/gpud components/accelerator/nvidia/nvlink/kmsg.go
  (RegexPostRxDetectFailureKMessage) and its fixtures;
- nvidia-peermem ``ERROR detected invalid context``: leptonai/gpud components/accelerator/nvidia/peermem;
- soft lockups (``watchdog: BUG: soft lockup - CPU#N stuck for Ns! [comm:pid]``, kernel/watchdog.c):
  in an NVIDIA driver thread (threaded IRQ ``irq/N-nvidia``, ``nv_queue``, ``nvidia-modeset/...``,
  open-gpu-kernel-modules#1205) the GPU driver is stuck; in any other task it is node OS evidence.
"""

from __future__ import annotations

import re

DRIVER_FAULTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "gsp_boot_failed",
        re.compile(
            r"NVRM: .*(?:Cannot initialize GSP firmware RM|_kgspBootGspRm: unexpected WPR2"
            r"|failed to wait for GFW boot complete|kgspBootstrap\w*: .*fail)"
        ),
    ),
    ("rm_init_failed", re.compile(r"NVRM: .*(?:RmInitAdapter failed!|rm_init_adapter failed)")),
    ("reset_required", re.compile(r"NVRM: .*\[NV_ERR_RESET_REQUIRED\]")),
    (
        "nvlink_rx_detect",
        re.compile(
            r"NVRM: (?:knvlinkUpdatePostRxDetectLinkMask_\w+: Failed to update Rx Detect Link mask!"
            r"|knvlinkDiscoverPostRxDetLinks_\w+: Getting peer\d+(?:'s)? postRxDetLinkMask failed!)"
        ),
    ),
    ("peermem_invalid_context", re.compile(r"nvidia-peermem .*ERROR detected invalid context")),
)

SOFT_LOCKUP = re.compile(r"soft lockup - CPU#\d+ stuck for \d+s! \[(?P<comm>.+):\d+\]")
NVIDIA_THREAD = re.compile(r"^(?:irq/\d+-nvidia|nv_queue|nvidia)", re.IGNORECASE)


def match_driver_fault(line: str) -> str | None:
    """The ``kernel_patterns`` key of the driver fault on ``line``, if any.

    >>> match_driver_fault("NVRM: GPU 0000:0a:00.0: RmInitAdapter failed! (0x24:0x72:1568)")
    'rm_init_failed'
    >>> match_driver_fault("watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [irq/180-nvidia:1412]")
    'nvidia_soft_lockup'
    >>> match_driver_fault("NVRM: GPU4 GSP RPC buffer contains function 103 (GSP_RM_ALLOC)") is None
    True
    """
    if "NVRM" in line or "nvidia-peermem" in line:
        for kind, pattern in DRIVER_FAULTS:
            if pattern.search(line):
                return kind
    if "soft lockup" in line:
        m = SOFT_LOCKUP.search(line)
        if m:
            return "nvidia_soft_lockup" if NVIDIA_THREAD.match(m["comm"]) else "soft_lockup"
    return None
