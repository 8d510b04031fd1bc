"""NVML collector: per-GPU gpu.sample every interval, gpu.xid from an NVML event set, node.inventory.

NVML is reached through :class:`Nvml`, the handful of nvidia-ml-py (``pynvml``) calls used here; the
real implementation is the ``pynvml`` module itself, tests pass a double that raises the library's
own :class:`pynvml.NVMLError` codes. A field NVML reports as not supported (or not permitted) is
``None`` in the sample - never 0, because 0 SBE errors and "cannot count SBE errors" mean different
things to a detector. A GPU that answers ``GPU is lost`` is reported with ``lost: true``. Where the
driver exposes it (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION), each reading carries the recovery action
the driver recommends, which the detectors treat as evidence.
"""

from __future__ import annotations

import ctypes
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar, cast

import pynvml

from agents.collect.base import CollectorUnavailable, Event
from agents.collect.gpu_fields import bus_id, valid_reading
from agents.collect.inventory import InventoryConfig, inventory_event
from schemas.clock_events import clock_event_names
from schemas.gpu_recovery import recovery_action_name
from streams.kafka.producer import build_event

log = logging.getLogger(__name__)
T = TypeVar("T")

SOURCE = "collect.nvml"
INVENTORY_EVERY_S = 600.0

# Errors meaning "this GPU/driver cannot give that field": the field is None, quietly.
_UNSUPPORTED = {
    pynvml.NVML_ERROR_NOT_SUPPORTED,
    pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
    pynvml.NVML_ERROR_NO_PERMISSION,
    pynvml.NVML_ERROR_INVALID_ARGUMENT,
}
_NO_DRIVER = {pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED}
NO_DRIVER_HINT = (
    "no NVIDIA driver here (libnvidia-ml.so.1 missing or the kernel module not loaded): run this on a "
    "GPU node with the NVIDIA driver installed (nvidia-smi must work), or scrape dcgm-exporter with "
    "`breakfix collect dcgm --url http://NODE:9400/metrics`"
)


class Nvml(Protocol):
    """The subset of nvidia-ml-py this collector calls (names and arguments as in ``pynvml``)."""

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...
    def nvmlDeviceGetName(self, handle: Any) -> str: ...
    def nvmlDeviceGetUUID(self, handle: Any) -> str: ...
    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any: ...
    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int: ...
    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any: ...
    def nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: int, counter_type: int) -> int: ...
    def nvmlDeviceGetRemappedRows(self, handle: Any) -> tuple[int, int, int, int]: ...
    def nvmlDeviceGetPcieReplayCounter(self, handle: Any) -> int: ...
    def nvmlDeviceGetNvLinkState(self, handle: Any, link: int) -> int: ...
    def nvmlDeviceGetNvLinkErrorCounter(self, handle: Any, link: int, counter: int) -> int: ...
    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int: ...
    def nvmlDeviceGetFieldValues(self, handle: Any, fieldIds: list[int]) -> Any: ...
    def nvmlEventSetCreate(self) -> Any: ...
    def nvmlDeviceRegisterEvents(self, handle: Any, event_types: int, event_set: Any) -> None: ...
    def nvmlEventSetWait(self, event_set: Any, timeout_ms: int) -> Any: ...
    def nvmlEventSetFree(self, event_set: Any) -> None: ...


def real_nvml() -> Nvml:
    """The installed nvidia-ml-py; it loads libnvidia-ml.so.1 only on ``nvmlInit``."""
    return cast(Nvml, pynvml)


def handle_key(handle: Any) -> int:
    """A device handle's address: the same device gives the same pointer in events and lookups."""
    return int(ctypes.cast(handle, ctypes.c_void_p).value or 0)


class _GpuLost(Exception):
    """NVML_ERROR_GPU_IS_LOST: the GPU fell off the bus; stop reading its other fields."""


class NvmlCollector:
    """One node's GPUs through NVML."""

    name = "nvml"

    def __init__(
        self,
        node: str,
        nvml: Nvml | None = None,
        interval_s: float = 10.0,
        inventory: InventoryConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.interval_s = interval_s
        self.nvml = nvml or real_nvml()
        self.inventory = inventory or InventoryConfig()
        self._clock = clock
        self._unsupported: set[str] = set()
        self.unused: Counter[str] = Counter()
        self._last_inventory: float | None = None
        try:
            self.nvml.nvmlInit()
        except pynvml.NVMLError as err:
            if err.value in _NO_DRIVER:
                raise CollectorUnavailable(f"NVML: {err}. {NO_DRIVER_HINT}") from err
            raise CollectorUnavailable(f"NVML could not initialise: {err}") from err
        try:
            count = self.nvml.nvmlDeviceGetCount()
            if count == 0:
                raise CollectorUnavailable(
                    "NVML found no GPU on this node (driver loaded, 0 devices): check `nvidia-smi -L`, "
                    "the container's device access (NVIDIA_VISIBLE_DEVICES) or run on a GPU node"
                )
            self.handles = [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.bus_ids = [self._bus_id(h) for h in self.handles]
            self._index_by_handle = {handle_key(h): i for i, h in enumerate(self.handles)}
            self._links = [self._nvlinks(h) for h in self.handles]
            self._events = self._register_xid_events()
        except BaseException:
            self.nvml.nvmlShutdown()
            raise

    # --- field reads ---------------------------------------------------------------------------

    def _read(self, field: str, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except pynvml.NVMLError as err:
            if err.value == pynvml.NVML_ERROR_GPU_IS_LOST:
                raise _GpuLost from err
            if field not in self._unsupported:
                self._unsupported.add(field)
                level = logging.INFO if err.value in _UNSUPPORTED else logging.WARNING
                log.log(level, "NVML %s unavailable (%s): reported as null", field, err)
            return None

    def _bus_id(self, handle: Any) -> str:
        pci = self.nvml.nvmlDeviceGetPciInfo(handle)
        return bus_id(int(pci.domain), int(pci.bus), int(pci.device))

    def _nvlinks(self, handle: Any) -> list[int]:
        """Links that exist on this GPU (PCIe-only GPUs have none: NVLink CRC is then null)."""
        links = []
        for link in range(pynvml.NVML_NVLINK_MAX_LINKS):
            try:
                self.nvml.nvmlDeviceGetNvLinkState(handle, link)
            except pynvml.NVMLError:
                continue
            links.append(link)
        return links

    def _recovery_action(self, handle: Any) -> str:
        """The driver's recommended recovery for this GPU (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION).

        Field reads succeed as a call and fail per field: a driver without the field answers
        NOT_SUPPORTED in the value's ``nvmlReturn``, which is raised here like any NVML error."""
        (value,) = self.nvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION])
        if value.nvmlReturn != pynvml.NVML_SUCCESS:
            raise pynvml.NVMLError(value.nvmlReturn)
        return recovery_action_name(int(value.value.uiVal))

    def _nvlink_crc(self, index: int) -> int | None:
        total: int | None = None
        for link in self._links[index]:
            n = self._read(
                "nvlink_crc_errors",
                self.nvml.nvmlDeviceGetNvLinkErrorCounter,
                self.handles[index],
                link,
                pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT,
            )
            if n is not None:
                total = (total or 0) + n
        return total

    def reading(self, index: int) -> dict[str, Any]:
        """One GPU's fields; None where NVML cannot say."""
        h = self.handles[index]
        nv = self.nvml
        try:
            temp = self._read("temp_c", nv.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
            power_mw = self._read("power_w", nv.nvmlDeviceGetPowerUsage, h)
            util = self._read("util", nv.nvmlDeviceGetUtilizationRates, h)
            sbe = self._read(
                "sbe_volatile",
                nv.nvmlDeviceGetTotalEccErrors,
                h,
                pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                pynvml.NVML_VOLATILE_ECC,
            )
            dbe = self._read(
                "dbe_volatile",
                nv.nvmlDeviceGetTotalEccErrors,
                h,
                pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                pynvml.NVML_VOLATILE_ECC,
            )
            remap = self._read("row_remap", nv.nvmlDeviceGetRemappedRows, h)
            replay = self._read("pcie_replay", nv.nvmlDeviceGetPcieReplayCounter, h)
            crc = self._nvlink_crc(index)
            reasons = self._read("throttle_reasons", nv.nvmlDeviceGetCurrentClocksEventReasons, h)
            recovery = self._read("recovery_action", self._recovery_action, h)
        except _GpuLost:
            return {"index": index, "bus_id": self.bus_ids[index], "lost": True}
        return {
            "index": index,
            "bus_id": self.bus_ids[index],
            "temp_c": temp,
            "power_w": None if power_mw is None else power_mw / 1000.0,
            "util": None if util is None else float(util.gpu),
            "sbe_volatile": sbe,
            "dbe_volatile": dbe,
            "row_remap_pending": None if remap is None else bool(remap[2]),
            "row_remap_failure": None if remap is None else bool(remap[3]),
            "pcie_replay": replay,
            "nvlink_crc_errors": crc,
            "throttle_reasons": [] if reasons is None else clock_event_names(reasons),
            "recovery_action": recovery,
        }

    def sample(self) -> Event:
        """One gpu.sample; a value the contract refuses is dropped to null and counted in ``unused``."""
        gpus = []
        for i in range(len(self.handles)):
            fields, dropped = valid_reading(self.reading(i))
            self.unused.update(f"refused:{name}" for name in dropped)
            if fields is not None:
                gpus.append(fields)
        return build_event("gpu.sample", SOURCE, self.node, {"gpus": gpus})

    def inventory_event(self) -> Event:
        names = {self._read("name", self.nvml.nvmlDeviceGetName, h) for h in self.handles} - {None}
        return inventory_event(
            SOURCE,
            self.node,
            self.inventory,
            gpus=len(self.handles),
            gpu_bus_ids=self.bus_ids,
            sku_hint=" / ".join(sorted(str(n) for n in names)) or None,
            driver_version=self._read("driver_version", self.nvml.nvmlSystemGetDriverVersion),
            gpu_uuids=[self._read("uuid", self.nvml.nvmlDeviceGetUUID, h) for h in self.handles],
        )

    # --- Xid events ----------------------------------------------------------------------------

    def _register_xid_events(self) -> Any | None:
        """One event set for critical Xid errors on every GPU that supports it (None: no GPU does)."""
        try:
            event_set = self.nvml.nvmlEventSetCreate()
        except pynvml.NVMLError as err:
            log.warning("NVML event sets unavailable (%s): no gpu.xid from NVML on %s", err, self.node)
            return None
        registered = 0
        for i, h in enumerate(self.handles):
            try:
                self.nvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeXidCriticalError, event_set)
                registered += 1
            except pynvml.NVMLError as err:
                log.warning("GPU %d: Xid events not available (%s)", i, err)
        if registered == 0:
            self.nvml.nvmlEventSetFree(event_set)
            return None
        return event_set

    def _xid_event(self, data: Any) -> Event | None:
        index = self._index_by_handle.get(handle_key(data.device))
        if index is None or not data.eventType & pynvml.nvmlEventTypeXidCriticalError:
            return None
        xid = int(data.eventData)
        return build_event(
            "gpu.xid",
            SOURCE,
            self.node,
            {"gpu": index, "xid": xid, "bus_id": self.bus_ids[index], "message": "NVML critical Xid event"},
            event_id=f"{SOURCE}-xid-{uuid.uuid4().hex}",
        )

    def xids(self, deadline: float) -> Iterator[Event]:
        """Xid events until ``deadline``; a deadline in the past drains what is already queued."""
        if self._events is None:
            return
        while True:
            wait_ms = max(0, int((deadline - self._clock()) * 1000))
            try:
                data = self.nvml.nvmlEventSetWait(self._events, wait_ms)
            except pynvml.NVMLError as err:
                if err.value != pynvml.NVML_ERROR_TIMEOUT:
                    log.warning("NVML event wait failed: %s", err)
                return
            event = self._xid_event(data)
            if event is not None:
                yield event

    # --- Collector protocol --------------------------------------------------------------------

    def poll(self, deadline: float) -> Iterator[Event]:
        now = self._clock()
        if self._last_inventory is None or now - self._last_inventory >= INVENTORY_EVERY_S:
            self._last_inventory = now
            yield self.inventory_event()
        yield self.sample()
        yield from self.xids(deadline)

    def nodes(self) -> list[str]:
        return [self.node]

    def close(self) -> None:
        if self._events is not None:
            self.nvml.nvmlEventSetFree(self._events)
            self._events = None
        self.nvml.nvmlShutdown()
