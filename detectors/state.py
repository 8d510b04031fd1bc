"""Everything detection remembers about one node. Bounded: slots per catalog signal and GPU, a few
counters per GPU, short capped histories. Checkpointed by the streaming shell in the compact form of
``detectors.record``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from detectors.models import Ewma, NodeWindowModel
from detectors.slots import Slot, SlotKey

MAX_CHANGES = 8
MAX_JOBS = 16


GpuCounters = tuple[Any, ...]
"""(scrape time, (sbe, dbe, pcie replay, nvlink crc), rate windows, thermal bits) of a GPU's previous
scrape: the last reading of each counter, the ``detectors.rates`` window state of the SBE, PCIe replay
and NVLink CRC counters (None before their first increase), and which thermal readings it had.
Records written before windows existed hold only the first two."""


@dataclass
class DetectState:
    node: str
    pool: str = ""
    rack: str = ""
    sku: str = ""
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    bus_to_gpu: dict[str, int] = field(default_factory=dict)
    slots: dict[SlotKey, Slot] = field(default_factory=dict)
    counters: dict[int, GpuCounters] = field(default_factory=dict)
    temp_models: dict[int, Ewma] = field(default_factory=dict)
    scrapes: int = 0
    """gpu.sample events seen: the online models learn from every ``LEARN_EVERY``-th."""
    window_model: NodeWindowModel = field(default_factory=NodeWindowModel)
    heartbeats: dict[str, tuple[float, float]] = field(default_factory=dict)
    """collector → (last heartbeat time, interval)."""
    changes: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=MAX_CHANGES))
    """(time, kind, version) of changes that touched this node or its pool."""
    app_xid_gpus: dict[str, set[int]] = field(default_factory=dict)
    """job → GPUs that logged application Xids for it (bounded to MAX_JOBS jobs)."""
    last_hw_xid: tuple[float, int] | None = None
    """(time, gpu) of the last hardware Xid: later NVLink/cleanup Xids within a minute are sympathetic."""
    unparsed_kernel_lines: int = 0
    lemon: float = 0.0
    lemon_time: float = 0.0
    gpu_lemon: dict[int, tuple[float, float]] = field(default_factory=dict)
    """gpu → (score, time)."""
    last_time: float = 0.0
    dirty: bool = False
    """Set when slots changed since the last fusion, so fusion runs only when it can say something new."""
