"""An NVML double: the calls of agents.collect.nvml.Nvml over in-memory GPUs, speaking pynvml's
own types - real ``pynvml.NVMLError`` codes, ``nvmlPciInfo_t``, ``c_nvmlUtilization_t``,
``c_nvmlEventData_t`` and ``c_nvmlDevice_t`` handles - so the collector cannot tell it from the
library except by the numbers. It is passed to the collector, never installed into ``sys.modules``.
"""

from __future__ import annotations

import ctypes
import queue
from dataclasses import dataclass, field
from typing import Any

import pynvml

_BASE_ADDRESS = 0x7F00_0000


def nvml_error(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


@dataclass
class FakeGpu:
    """One GPU. A field set to an int error code raises that NVMLError when read."""

    name: str = "NVIDIA H200"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    pci: tuple[int, int, int] = (0, 0x3B, 0)
    temp_c: int | None = 40
    power_mw: int | None = 350_000
    util: int | None = 50
    sbe: int | None = 0
    dbe: int | None = 0
    remapped: tuple[int, int, int, int] | None = (0, 0, 0, 0)
    pcie_replay: int | None = 0
    nvlinks: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})
    """link → CRC flit error count; links absent here answer NOT_SUPPORTED like a missing link."""
    clock_reasons: int | None = 0
    recovery_action: int | None = pynvml.NVML_GPU_RECOVERY_ACTION_NONE
    """NVML_FI_DEV_GET_GPU_RECOVERY_ACTION's value; None: the driver predates the field (the call
    succeeds, the field's own nvmlReturn says NOT_SUPPORTED, as NVML does per field)."""
    errors: dict[str, int] = field(default_factory=dict)
    """call name (e.g. 'temperature') → NVML error code it raises."""
    xid_supported: bool = True


class NvmlDouble:
    """Implements the Nvml protocol. ``init_error``/``count`` model no driver / no GPU."""

    def __init__(
        self, gpus: list[FakeGpu], init_error: int | None = None, driver: str = "570.124.06"
    ) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.driver = driver
        self.initialised = False
        self.shutdowns = 0
        self.freed_sets = 0
        self.registered: list[int] = []
        self._events: queue.Queue[Any] = queue.Queue()
        self._handles = [
            ctypes.cast(ctypes.c_void_p(_BASE_ADDRESS + 0x100 * i), pynvml.c_nvmlDevice_t)
            for i in range(len(gpus))
        ]

    # --- test controls -------------------------------------------------------------------------

    def inject_xid(self, index: int, xid: int) -> None:
        """Queue a critical Xid event as the driver would deliver it to a registered event set."""
        data = pynvml.c_nvmlEventData_t()
        data.device = self._handles[index]
        data.eventType = pynvml.nvmlEventTypeXidCriticalError
        data.eventData = xid
        self._events.put(data)

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _index(handle: Any) -> int:
        return (int(ctypes.cast(handle, ctypes.c_void_p).value or 0) - _BASE_ADDRESS) // 0x100

    def _gpu(self, handle: Any, call: str) -> FakeGpu:
        if not self.initialised:
            raise nvml_error(pynvml.NVML_ERROR_UNINITIALIZED)
        gpu = self.gpus[self._index(handle)]
        if call in gpu.errors:
            raise nvml_error(gpu.errors[call])
        return gpu

    @staticmethod
    def _value(v: Any) -> Any:
        if v is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return v

    # --- the Nvml protocol ---------------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise nvml_error(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        if not 0 <= index < len(self.gpus):
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._handles[index]

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._gpu(handle, "name").name

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        return self._gpu(handle, "uuid").uuid

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        gpu = self._gpu(handle, "pci")
        info = pynvml.nvmlPciInfo_t()
        info.domain, info.bus, info.device = gpu.pci
        info.busId = f"{gpu.pci[0]:08X}:{gpu.pci[1]:02X}:{gpu.pci[2]:02X}.0".encode()
        return info

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(self._value(self._gpu(handle, "temperature").temp_c))

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return int(self._value(self._gpu(handle, "power").power_mw))

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        u = pynvml.c_nvmlUtilization_t()
        u.gpu = self._value(self._gpu(handle, "utilization").util)
        u.memory = 0
        return u

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: int, counter_type: int) -> int:
        gpu = self._gpu(handle, "ecc")
        if counter_type != pynvml.NVML_VOLATILE_ECC:
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(self._value(gpu.sbe if error_type == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else gpu.dbe))

    def nvmlDeviceGetRemappedRows(self, handle: Any) -> tuple[int, int, int, int]:
        remapped: tuple[int, int, int, int] = self._value(self._gpu(handle, "remapped_rows").remapped)
        return remapped

    def nvmlDeviceGetPcieReplayCounter(self, handle: Any) -> int:
        return int(self._value(self._gpu(handle, "pcie_replay").pcie_replay))

    def nvmlDeviceGetNvLinkState(self, handle: Any, link: int) -> int:
        gpu = self._gpu(handle, "nvlink_state")
        if link not in gpu.nvlinks:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return pynvml.NVML_FEATURE_ENABLED

    def nvmlDeviceGetNvLinkErrorCounter(self, handle: Any, link: int, counter: int) -> int:
        gpu = self._gpu(handle, "nvlink_errors")
        if link not in gpu.nvlinks or counter != pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu.nvlinks[link]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:
        return int(self._value(self._gpu(handle, "clock_reasons").clock_reasons))

    def nvmlDeviceGetFieldValues(self, handle: Any, fieldIds: list[int]) -> Any:
        """Like NVML: one ``c_nvmlFieldValue_t`` per id, each with its own return code."""
        gpu = self._gpu(handle, "field_values")
        values = (pynvml.c_nvmlFieldValue_t * len(fieldIds))()
        for slot, field_id in zip(values, fieldIds, strict=True):
            slot.fieldId = field_id
            if field_id == pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION and gpu.recovery_action is not None:
                slot.nvmlReturn = pynvml.NVML_SUCCESS
                slot.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                slot.value.uiVal = gpu.recovery_action
            else:
                slot.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlEventSetCreate(self) -> Any:
        return pynvml.c_nvmlEventSet_t()

    def nvmlDeviceRegisterEvents(self, handle: Any, event_types: int, event_set: Any) -> None:
        gpu = self._gpu(handle, "register_events")
        if not gpu.xid_supported:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        self.registered.append(self._index(handle))

    def nvmlEventSetWait(self, event_set: Any, timeout_ms: int) -> Any:
        try:
            return self._events.get(timeout=timeout_ms / 1000.0) if timeout_ms else self._events.get_nowait()
        except queue.Empty:
            raise nvml_error(pynvml.NVML_ERROR_TIMEOUT) from None

    def nvmlEventSetFree(self, event_set: Any) -> None:
        self.freed_sets += 1
