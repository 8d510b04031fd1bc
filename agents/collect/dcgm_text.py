"""dcgm-exporter's Prometheus text, read series by series: what each node's GPUs (and MIG instances) said.

Real exporters print lines a strict parser refuses: a field DCGM cannot render becomes the value
``ERROR - FAILED TO CONVERT TO STRING`` (dcgm-exporter ``internal/pkg/collector/const.go``), an
array field prints a string, a hand-edited label loses a quote. Each line is parsed on its own with
prometheus-client's parser, so one bad line costs that series, counted by reason in ``unused``,
never the scrape. DCGM's "blank" sentinels (no data / not found / not supported / no permission,
``DCGM_INT32_BLANK``, ``DCGM_INT64_BLANK`` and ``DCGM_FP64_BLANK`` and the three values after each in
DCGM's ``dcgm_structs.h``; dcgm-exporter drops them too, ``isInt64Blank``) are "not read", never a
reading.

Series are grouped by node (the ``hostname`` label since dcgm-exporter #655, ``Hostname`` before) and
GPU index; a series with ``GPU_I_ID`` belongs to that MIG GPU instance and is kept per instance.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter, ValidationError

from agents.collect.gpu_fields import normalize_bus_id
from schemas.common import NodeId

FAILED_TO_CONVERT = "ERROR - FAILED TO CONVERT TO STRING"
MAX_XID = 10_000  # the gpu.xid contract's bound
_NODE_ID = TypeAdapter(NodeId)

_INT32_BLANK = 0x7FFFFFF0
_INT64_BLANK = 0x7FFFFFFFFFFFFFF0
_FP64_BLANK = 140737488355328.0  # 2**47
_BLANKS = frozenset(
    {_INT32_BLANK + i for i in range(4)}
    | {_INT64_BLANK + i for i in range(4)}
    | {_FP64_BLANK + i for i in range(4)}
)

# DCGM field → gpu.sample field, with how the value is read.
FLOAT_FIELDS = {
    "DCGM_FI_DEV_GPU_TEMP": "temp_c",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_GPU_UTIL": "util",
}
COUNT_FIELDS = {
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": "sbe_volatile",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "dbe_volatile",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": "pcie_replay",
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL": "nvlink_crc_errors",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": "uncorrectable_remapped_rows",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": "correctable_remapped_rows",
}
BOOL_FIELDS = {
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": "row_remap_failure",
    "DCGM_FI_DEV_ROW_REMAP_PENDING": "row_remap_pending",
}
# The throttle mask was renamed "clocks event reasons" in DCGM 3.3; exporters ship either name.
CLOCK_MASK_FIELDS = {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"}
# Reasons counted in the exporter's window; before dcgm-exporter a3ae347 the metric was
# DCGM_FI_EXP_CLOCK_THROTTLE_REASONS_COUNT with a throttle_reason label.
CLOCK_EVENTS_COUNT = {
    "DCGM_EXP_CLOCK_EVENTS_COUNT": "clock_event",
    "DCGM_FI_EXP_CLOCK_THROTTLE_REASONS_COUNT": "throttle_reason",
}
XID_LAST = "DCGM_FI_DEV_XID_ERRORS"
XID_COUNT = "DCGM_EXP_XID_ERRORS_COUNT"

# dcgm-exporter's clock_event label names (clock_events_collector.go) → the contract's names.
_CLOCK_EVENT_LABELS = {
    "gpu_idle": "gpu_idle",
    "clocks_setting": "applications_clocks_setting",
    "power_cap": "sw_power_cap",
    "hw_slowdown": "hw_slowdown",
    "sync_boost": "sync_boost",
    "sw_thermal": "sw_thermal",
    "hw_thermal": "hw_thermal",
    "hw_power_brake": "hw_power_brake",
    "display_clocks": "display_clock_setting",
}


@dataclass
class Unit:
    """A GPU, or one MIG GPU instance on it: the fields read and the Xids it reported."""

    fields: dict[str, Any] = field(default_factory=dict)
    clock_mask: int | None = None
    clock_events: set[str] = field(default_factory=set)
    xid_last: int | None = None
    xid_counts: dict[int, int] = field(default_factory=dict)
    profile: str | None = None

    def reasons(self) -> list[str] | int | None:
        """The clock-event mask when exported, else the reasons seen in the exporter's window."""
        if self.clock_mask is not None:
            return self.clock_mask
        return sorted(self.clock_events) if self.clock_events else None


@dataclass
class Gpu:
    index: int
    device: Unit = field(default_factory=Unit)
    instances: dict[int, Unit] = field(default_factory=dict)
    bus_id: str | None = None
    uuid: str | None = None
    model: str | None = None
    driver: str | None = None


@dataclass
class Scrape:
    """One scrape: node → GPU index → GPU; ``metrics`` are the metric names seen on GPU series."""

    nodes: dict[str, dict[int, Gpu]]
    metrics: set[str]
    unused: Counter[str]


def _series(line: str) -> tuple[str, dict[str, str], float | int] | str:
    """(name, labels, value), or the reason the line is not a series."""
    try:
        families = list(text_string_to_metric_families(line))
    except ValueError:
        return "exporter_error" if line.rstrip().endswith(FAILED_TO_CONVERT) else "unparseable_line"
    samples = [s for f in families for s in f.samples]
    if len(samples) != 1:
        return "unparseable_line"
    s = samples[0]
    return s.name, dict(s.labels), s.value


def _apply(unit: Unit, name: str, labels: dict[str, str], value: float | int) -> str | None:
    """Record one series on a GPU or instance; the skip reason when its value is not usable."""
    if name in FLOAT_FIELDS:
        unit.fields[FLOAT_FIELDS[name]] = float(value)
    elif name in COUNT_FIELDS:
        if value != int(value):
            return "not_an_integer"
        unit.fields[COUNT_FIELDS[name]] = int(value)
    elif name in BOOL_FIELDS:
        unit.fields[BOOL_FIELDS[name]] = bool(value)
    elif name in CLOCK_MASK_FIELDS:
        if value != int(value) or not 0 <= value < 2**64:
            return "not_a_mask"
        unit.clock_mask = int(value)
    elif name in CLOCK_EVENTS_COUNT:
        label = labels.get(CLOCK_EVENTS_COUNT[name], "")
        if value > 0 and label:
            unit.clock_events.add(_CLOCK_EVENT_LABELS.get(label, label))
    elif name == XID_LAST:
        code = labels.get("err_code", "")  # dcgm-exporter >= 4 labels the value with its code
        xid = int(code) if code.isdigit() else int(value)
        if not 0 <= xid <= MAX_XID:
            return "bad_xid"
        unit.xid_last = xid
    elif name == XID_COUNT:
        label = labels.get("xid", "")
        if not label.isdigit() or not 0 < int(label) <= MAX_XID:
            return "bad_xid"
        unit.xid_counts[int(label)] = int(value)
    return None


def _valid_node(node: str) -> bool:
    """A hostname label the contract accepts as a node id (else every event of it would be refused)."""
    try:
        _NODE_ID.validate_python(node)
    except ValidationError:
        return False
    return True


def parse_scrape(text: str, default_node: str) -> Scrape:
    """Every GPU series of one scrape; lines that are not usable series are counted, never raised."""
    nodes: dict[str, dict[int, Gpu]] = defaultdict(dict)
    metrics: set[str] = set()
    unused: Counter[str] = Counter()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parsed = _series(line)
        if isinstance(parsed, str):
            unused[parsed] += 1
            continue
        name, labels, value = parsed
        if "gpu" not in labels:
            continue  # NVSwitch, NVLink-only, CPU series: not about a GPU
        if not labels["gpu"].isdigit():
            unused["bad_gpu_label"] += 1
            continue
        metrics.add(name)
        if value in _BLANKS or math.isnan(value):  # DCGM's "no value" sentinel, or NaN
            unused["blank"] += 1
            continue
        if math.isinf(value):
            unused["not_finite"] += 1
            continue
        node = labels.get("hostname") or labels.get("Hostname") or default_node
        if node not in nodes and not _valid_node(node):
            unused["bad_hostname"] += 1
            continue
        index = int(labels["gpu"])
        gpu = nodes[node].setdefault(index, Gpu(index))
        gpu.bus_id = gpu.bus_id or normalize_bus_id(labels.get("pci_bus_id", ""))
        gpu.uuid = gpu.uuid or labels.get("UUID") or labels.get("uuid")
        gpu.model = gpu.model or labels.get("modelName")
        gpu.driver = gpu.driver or labels.get("DCGM_FI_DRIVER_VERSION")
        unit = gpu.device
        instance = labels.get("GPU_I_ID", "")
        if instance.isdigit():
            unit = gpu.instances.setdefault(int(instance), Unit(profile=labels.get("GPU_I_PROFILE")))
        reason = _apply(unit, name, labels, value)
        if reason:
            unused[reason] += 1
    return Scrape(dict(nodes), metrics, unused)
