"""dcgm-exporter collector: scrape its Prometheus text endpoint into gpu.sample, gpu.xid, node.inventory.

Sites that already run NVIDIA's dcgm-exporter (GPU Operator) get the same events as from NVML without
a second agent on the node. The text is parsed with prometheus-client's parser; series are grouped by
(``Hostname``, ``gpu``) so one scrape of an aggregating endpoint can cover several nodes. A field the
exporter does not export (its counters CSV decides) stays ``None``.

``DCGM_FI_DEV_XID_ERRORS`` is a gauge holding the *last* Xid seen on the GPU, not an event: a gpu.xid
is emitted when it changes to a new non-zero value. The first scrape only records the baseline, so a
collector restart never replays an old Xid as a new fault.
"""

from __future__ import annotations

import math
import socket
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from breakfix.collect.base import Event
from breakfix.collect.gpu_fields import normalize_bus_id, throttle_names
from breakfix.collect.inventory import InventoryConfig, inventory_event
from streams.producer import build_event

SOURCE = "collect.dcgm"
INVENTORY_EVERY_ROUNDS = 60

# DCGM field → gpu.sample field. Booleans are 0/1 gauges.
_FLOAT = {
    "DCGM_FI_DEV_GPU_TEMP": "temp_c",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_GPU_UTIL": "util",
}
_COUNT = {
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": "sbe_volatile",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "dbe_volatile",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": "pcie_replay",
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL": "nvlink_crc_errors",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": "uncorrectable_remapped_rows",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": "correctable_remapped_rows",
}
_BOOL = {
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": "row_remap_failure",
    "DCGM_FI_DEV_ROW_REMAP_PENDING": "row_remap_pending",
}
# The throttle mask was renamed "clocks event reasons" in DCGM 3.3; exporters ship either name.
_THROTTLE = {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"}
_XID = "DCGM_FI_DEV_XID_ERRORS"


def http_get(url: str, timeout_s: float) -> str:
    """GET the exporter's text; raises httpx errors (the run loop retries next interval)."""
    resp = httpx.get(url, timeout=timeout_s)
    resp.raise_for_status()
    return resp.text


class _Gpu:
    def __init__(self, index: int) -> None:
        self.fields: dict[str, Any] = {"index": index}
        self.bus_id: str | None = None
        self.uuid: str | None = None
        self.model: str | None = None
        self.driver: str | None = None
        self.xid: int | None = None


def parse_exposition(text: str, default_node: str) -> dict[str, dict[int, _Gpu]]:
    """node → GPU index → what the exporter said about it. Unknown series are ignored."""
    nodes: dict[str, dict[int, _Gpu]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        # The parser names counter samples NAME_total; the exporter's own name is the family's.
        name = family.name
        for s in family.samples:
            if s.name not in (name, f"{name}_total") or "gpu" not in s.labels or math.isnan(s.value):
                continue
            node = s.labels.get("Hostname") or default_node
            index = int(s.labels["gpu"])
            gpu = nodes[node].setdefault(index, _Gpu(index))
            gpu.bus_id = gpu.bus_id or normalize_bus_id(s.labels.get("pci_bus_id", ""))
            gpu.uuid = gpu.uuid or s.labels.get("UUID")
            gpu.model = gpu.model or s.labels.get("modelName")
            gpu.driver = gpu.driver or s.labels.get("DCGM_FI_DRIVER_VERSION")
            if name in _FLOAT:
                gpu.fields[_FLOAT[name]] = float(s.value)
            elif name in _COUNT:
                gpu.fields[_COUNT[name]] = int(s.value)
            elif name in _BOOL:
                gpu.fields[_BOOL[name]] = bool(s.value)
            elif name in _THROTTLE:
                gpu.fields["throttle_reasons"] = throttle_names(int(s.value))
            elif name == _XID:
                gpu.xid = int(s.value)
    return nodes


class DcgmCollector:
    """Scrapes one dcgm-exporter endpoint each interval."""

    name = "dcgm"

    def __init__(
        self,
        url: str,
        node: str | None = None,
        interval_s: float = 15.0,
        inventory: InventoryConfig | None = None,
        fetch: Callable[[str, float], str] = http_get,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.node = node
        self.interval_s = interval_s
        self.inventory = inventory or InventoryConfig()
        self._fetch = fetch
        self._timeout_s = timeout_s
        self._last_xid: dict[tuple[str, int], int] = {}
        self._seen: list[str] = []
        self._rounds = 0

    def poll(self, deadline: float) -> Iterator[Event]:
        text = self._fetch(self.url, self._timeout_s)
        default = self.node or socket.gethostname().split(".")[0]
        parsed = parse_exposition(text, default)
        if self.node:  # an explicit node id wins over the exporter's Hostname label
            parsed = {self.node: {i: g for gpus in parsed.values() for i, g in gpus.items()}}
        self._seen = sorted(parsed)
        for node, gpus in sorted(parsed.items()):
            ordered = [gpus[i] for i in sorted(gpus)]
            if self._rounds % INVENTORY_EVERY_ROUNDS == 0:
                yield self._inventory(node, ordered)
            yield build_event("gpu.sample", SOURCE, node, {"gpus": [dict(g.fields) for g in ordered]})
            yield from self._xids(node, ordered)
        self._rounds += 1

    def _inventory(self, node: str, gpus: list[_Gpu]) -> Event:
        bus_ids = [g.bus_id for g in gpus]
        return inventory_event(
            SOURCE,
            node,
            self.inventory,
            gpus=len(gpus),
            gpu_bus_ids=None if None in bus_ids else [str(b) for b in bus_ids],
            sku_hint=gpus[0].model if gpus else None,
            driver_version=gpus[0].driver if gpus else None,
            gpu_uuids=[g.uuid for g in gpus],
        )

    def _xids(self, node: str, gpus: list[_Gpu]) -> Iterator[Event]:
        for g in gpus:
            if g.xid is None:
                continue
            key = (node, g.fields["index"])
            previous = self._last_xid.get(key)
            self._last_xid[key] = g.xid
            if previous is not None and g.xid != previous and g.xid > 0:
                data = {
                    "gpu": key[1],
                    "xid": g.xid,
                    "message": "dcgm-exporter DCGM_FI_DEV_XID_ERRORS changed",
                }
                if g.bus_id:
                    data["bus_id"] = g.bus_id
                yield build_event("gpu.xid", SOURCE, node, data)

    def nodes(self) -> list[str]:
        return list(self._seen)

    def close(self) -> None:
        return None
