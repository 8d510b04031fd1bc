"""dcgm-exporter collector: scrape its Prometheus text endpoint into gpu.sample, gpu.xid, node.inventory.

Sites that already run NVIDIA's dcgm-exporter (GPU Operator) get the same events as from NVML without
a second agent on the node. :mod:`agents.collect.dcgm_text` reads the text line by line; here each
GPU becomes one reading of the node's ``gpu.sample``. A field the exporter does not export (its
counters CSV decides) stays ``None``; a value the contract refuses is dropped and counted in
``unused``, so the rest of the scrape still becomes valid events.

MIG: series labelled ``GPU_I_ID`` are kept per GPU instance under the reading's ``mig`` list; the
GPU's own fields take the worst instance value (highest count or temperature, any flag set, every
clock-event reason) when the exporter only reports them per instance.

Xids arrive three ways and each is an event only when it is new: ``DCGM_FI_DEV_XID_ERRORS`` is a
gauge holding the *last* Xid (newer exporters also label it ``err_code``): a gpu.xid when it changes
to a new non-zero value; ``DCGM_EXP_XID_ERRORS_COUNT{xid=...}`` counts each Xid in a sliding window:
a gpu.xid when a count rises. The first scrape of a node only records the baseline, so a collector
restart never replays an old Xid as a new fault.

The default dcgm-exporter counters CSV carries no ECC, clock-event or row-remap-pending field; the
collector warns once, naming the lines to add (:data:`WANTED_FIELDS`).
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from agents.collect.base import Event
from agents.collect.dcgm_text import Gpu, Unit, parse_scrape
from agents.collect.gpu_fields import valid_reading
from agents.collect.inventory import InventoryConfig, inventory_event
from schemas.clock_events import clock_event_names
from streams.kafka.producer import build_event

log = logging.getLogger(__name__)

SOURCE = "collect.dcgm"
INVENTORY_EVERY_ROUNDS = 60

# What breakfix needs from the exporter, as counters-CSV lines (format of dcgm-exporter's
# etc/default-counters.csv); a group is present when any of its metrics is.
WANTED_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Xid": (
        ("DCGM_FI_DEV_XID_ERRORS", "DCGM_EXP_XID_ERRORS_COUNT"),
        ("DCGM_FI_DEV_XID_ERRORS, gauge, Value of the last XID error encountered.",),
    ),
    "ECC": (
        ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"),
        (
            "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL, counter, Total number of single-bit volatile ECC errors.",
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL, counter, Total number of double-bit volatile ECC errors.",
        ),
    ),
    "clock events": (
        (
            "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
            "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
            "DCGM_EXP_CLOCK_EVENTS_COUNT",
            "DCGM_FI_EXP_CLOCK_THROTTLE_REASONS_COUNT",
        ),
        ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS, gauge, Current clock event reasons (bitmask).",),
    ),
    "row remapping": (
        ("DCGM_FI_DEV_ROW_REMAP_PENDING",),
        ("DCGM_FI_DEV_ROW_REMAP_PENDING, gauge, Whether remapping of rows is pending.",),
    ),
}


def missing_fields(metrics: set[str]) -> dict[str, tuple[str, ...]]:
    """Groups of :data:`WANTED_FIELDS` the exporter does not export → the CSV lines that add them.

    >>> sorted(missing_fields({"DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_ROW_REMAP_PENDING"}))
    ['ECC', 'clock events']
    """
    return {
        group: lines for group, (names, lines) in WANTED_FIELDS.items() if not metrics.intersection(names)
    }


def http_get(url: str, timeout_s: float) -> str:
    """GET the exporter's text; raises httpx errors (the run loop retries next interval)."""
    resp = httpx.get(url, timeout=timeout_s)
    resp.raise_for_status()
    return resp.text


def _fields(unit: Unit) -> dict[str, Any]:
    """A GPU's or instance's contract fields, the clock-event mask decoded to names."""
    out = dict(unit.fields)
    reasons = unit.reasons()
    if reasons is not None:
        out["throttle_reasons"] = clock_event_names(reasons) if isinstance(reasons, int) else reasons
    return out


def _worst(device: Unit, instances: list[Unit]) -> dict[str, Any]:
    """The GPU's fields: its own where exported, else the worst of its MIG instances'."""
    own = _fields(device)
    out = dict(own)
    for unit in instances:
        for key, value in _fields(unit).items():
            if key in own:
                continue
            if key == "throttle_reasons":
                out[key] = sorted(set(out.get(key, [])) | set(value))
            else:
                out[key] = value if key not in out else max(out[key], value)
    return out


class DcgmCollector:
    """Scrapes one dcgm-exporter endpoint each interval. ``unused`` counts what it could not use."""

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
        self.unused: Counter[str] = Counter()
        self.missing: dict[str, tuple[str, ...]] = {}
        self._last_xid: dict[tuple[str, int, int | None], int] = {}
        self._xid_counts: dict[tuple[str, int, int | None, int], int] = {}
        self._baselined: set[str] = set()
        self._seen: list[str] = []
        self._rounds = 0

    def poll(self, deadline: float) -> Iterator[Event]:
        text = self._fetch(self.url, self._timeout_s)
        default = self.node or socket.gethostname().split(".")[0]
        scrape = parse_scrape(text, default)
        self.unused.update(scrape.unused)
        self._check_fields(scrape.metrics)
        parsed = scrape.nodes
        if self.node:  # an explicit node id wins over the exporter's hostname label
            parsed = {self.node: {i: g for gpus in parsed.values() for i, g in gpus.items()}}
        self._seen = sorted(parsed)
        for node, gpus in sorted(parsed.items()):
            usable = [(g, self._reading(g)) for g in (gpus[i] for i in sorted(gpus))]
            ordered = [g for g, r in usable if r is not None]
            readings = [r for _, r in usable if r is not None]
            if self._rounds % INVENTORY_EVERY_ROUNDS == 0:
                yield self._inventory(node, ordered)
            yield build_event("gpu.sample", SOURCE, node, {"gpus": readings})
            yield from self._xids(node, ordered)
            self._baselined.add(node)
        self._rounds += 1

    def _check_fields(self, metrics: set[str]) -> None:
        """Warn once (and again only if it changes) when the exporter lacks fields breakfix reads."""
        missing = missing_fields(metrics) if metrics else {}
        if missing and missing != self.missing:
            lines = "\n  ".join(line for group in missing.values() for line in group)
            log.warning(
                "dcgm-exporter at %s exports no %s fields, so those faults cannot be seen from it. "
                "Add these lines to its counters CSV (dcgm-exporter -f FILE, or the GPU Operator's "
                "dcgmExporter.config ConfigMap) and restart it:\n  %s",
                self.url,
                ", ".join(missing),
                lines,
            )
        self.missing = missing

    def _reading(self, gpu: Gpu) -> dict[str, Any] | None:
        """One GPU of the sample, valid for the contract; dropped fields are counted by name."""
        instances = sorted(gpu.instances.items())
        fields, dropped = valid_reading({"index": gpu.index, **_worst(gpu.device, [u for _, u in instances])})
        self.unused.update(f"refused:{name}" for name in dropped)
        if fields is None:
            return None
        mig = []
        for gi, unit in instances:
            kept, bad = valid_reading({"index": gpu.index, **_fields(unit)})
            self.unused.update(f"refused:mig.{name}" for name in bad)
            kept = {k: v for k, v in (kept or {}).items() if k != "index"}
            mig.append({"gpu_instance_id": gi, "profile": unit.profile, **kept})
        if mig:
            fields["mig"] = mig
        if gpu.bus_id:
            fields["bus_id"] = gpu.bus_id
        return fields

    def _inventory(self, node: str, gpus: list[Gpu]) -> Event:
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

    def _xids(self, node: str, gpus: list[Gpu]) -> Iterator[Event]:
        baseline = node not in self._baselined
        for g in gpus:
            units: list[tuple[int | None, Unit]] = [(None, g.device), *sorted(g.instances.items())]
            for gi, unit in units:
                new: dict[int, str] = {}
                for xid, count in sorted(unit.xid_counts.items()):
                    key = (node, g.index, gi, xid)
                    before = self._xid_counts.get(key, 0)
                    self._xid_counts[key] = count
                    if not baseline and count > before:
                        new[xid] = f"dcgm-exporter DCGM_EXP_XID_ERRORS_COUNT rose to {count}"
                if unit.xid_last is not None:
                    previous = self._last_xid.get((node, g.index, gi))
                    self._last_xid[(node, g.index, gi)] = unit.xid_last
                    if previous is not None and unit.xid_last not in (previous, 0):
                        new.setdefault(unit.xid_last, "dcgm-exporter DCGM_FI_DEV_XID_ERRORS changed")
                for xid, message in new.items():
                    yield self._xid_event(node, g, gi, xid, message)

    def _xid_event(self, node: str, g: Gpu, gi: int | None, xid: int, message: str) -> Event:
        data: dict[str, Any] = {"gpu": g.index, "xid": xid, "message": message}
        if g.bus_id:
            data["bus_id"] = g.bus_id
        if gi is not None:
            data["gpu_instance"] = gi
        return build_event("gpu.xid", SOURCE, node, data)

    def nodes(self) -> list[str]:
        return list(self._seen)

    def close(self) -> None:
        return None
