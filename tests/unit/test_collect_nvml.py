"""NVML collector against the NVML double: real pynvml error codes, None for unsupported fields."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pynvml
import pytest

from agents.collect.base import CollectorUnavailable, RecordingSink, run
from agents.collect.nvml import NvmlCollector
from schemas.deadletter import DeadLetter
from schemas.events import AgentHeartbeat, GpuSample, GpuXid, NodeInventory
from schemas.recording import read_recording
from streams.kafka.producer import check
from tests.fakes.nvml_double import FakeGpu, NvmlDouble


def _gpus() -> list[FakeGpu]:
    return [
        FakeGpu(
            uuid="GPU-a",
            pci=(0, 0x3B, 0),
            temp_c=61,
            power_mw=412_345,
            util=97,
            sbe=3,
            remapped=(1, 0, 1, 0),
            pcie_replay=7,
            nvlinks={0: 2, 1: 5, 17: 1},
            clock_reasons=0x8 | 0x40,
        ),
        FakeGpu(
            uuid="GPU-b",
            pci=(0, 0x86, 0),
            sbe=None,
            dbe=None,
            remapped=None,
            pcie_replay=None,
            nvlinks={},
            clock_reasons=None,
            errors={"power": pynvml.NVML_ERROR_NO_PERMISSION, "utilization": pynvml.NVML_ERROR_UNKNOWN},
        ),
    ]


def test_sample_maps_fields_and_reports_unsupported_as_null() -> None:
    c = NvmlCollector("gpu01", NvmlDouble(_gpus()))
    sample = check(c.sample())
    assert isinstance(sample, GpuSample)
    g0, g1 = sample.data.gpus
    assert (g0.temp_c, g0.power_w, g0.util, g0.sbe_volatile, g0.dbe_volatile) == (61, 412.345, 97, 3, 0)
    assert (g0.row_remap_pending, g0.row_remap_failure, g0.pcie_replay) == (True, False, 7)
    assert g0.nvlink_crc_errors == 8  # summed over the links that exist
    assert g0.throttle_reasons == ["hw_slowdown", "hw_thermal"]
    # Not supported / no permission / unknown error: None, never 0.
    assert g1.temp_c == 40
    assert (g1.power_w, g1.util, g1.sbe_volatile, g1.dbe_volatile) == (None, None, None, None)
    assert (g1.row_remap_pending, g1.row_remap_failure, g1.pcie_replay, g1.nvlink_crc_errors) == (
        None,
        None,
        None,
        None,
    )
    assert g1.throttle_reasons == []


def test_inventory_has_bus_ids_in_index_order_and_sku_from_gpu_name() -> None:
    inv = check(NvmlCollector("gpu01", NvmlDouble(_gpus())).inventory_event())
    assert isinstance(inv, NodeInventory)
    assert inv.data.gpus == 2
    assert inv.data.gpu_bus_ids == ["0000:3b:00", "0000:86:00"]
    assert inv.data.sku == "NVIDIA H200"
    assert inv.data.model_extra is not None
    assert inv.data.model_extra["gpu_uuids"] == ["GPU-a", "GPU-b"]
    assert inv.data.model_extra["driver_version"] == "570.124.06"


def test_lost_gpu_is_flagged_not_zeroed() -> None:
    gpus = _gpus()
    gpus[1].errors["temperature"] = pynvml.NVML_ERROR_GPU_IS_LOST
    sample = check(NvmlCollector("gpu01", NvmlDouble(gpus)).sample())
    assert isinstance(sample, GpuSample)
    lost = sample.data.gpus[1]
    assert lost.model_extra == {"bus_id": "0000:86:00", "lost": True}
    assert lost.temp_c is None and lost.sbe_volatile is None


def test_xid_event_maps_handle_to_index() -> None:
    nvml = NvmlDouble(_gpus())
    c = NvmlCollector("gpu01", nvml)
    assert nvml.registered == [0, 1]
    nvml.inject_xid(1, 79)
    events = list(c.xids(time.monotonic()))  # deadline now: drain what is queued
    assert len(events) == 1
    xid = check(events[0])
    assert isinstance(xid, GpuXid)
    assert (xid.data.gpu, xid.data.xid) == (1, 79)
    assert xid.data.model_extra == {"bus_id": "0000:86:00"}


def test_xid_wait_returns_at_deadline_and_delivers_while_waiting() -> None:
    nvml = NvmlDouble(_gpus())
    c = NvmlCollector("gpu01", nvml)
    threading.Timer(0.1, nvml.inject_xid, args=(0, 48)).start()
    t0 = time.monotonic()
    events = list(c.xids(t0 + 0.5))
    assert [e["data"]["xid"] for e in events] == [48]
    assert 0.45 <= time.monotonic() - t0 < 1.5


def test_unsupported_xid_registration_leaves_samples_working() -> None:
    gpus = _gpus()
    for g in gpus:
        g.xid_supported = False
    nvml = NvmlDouble(gpus)
    c = NvmlCollector("gpu01", nvml)
    assert nvml.freed_sets == 1
    assert list(c.xids(time.monotonic() + 0.05)) == []
    assert isinstance(check(c.sample()), GpuSample)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "no NVIDIA driver"),
        (pynvml.NVML_ERROR_UNKNOWN, "could not initialise"),
    ],
)
def test_no_driver_is_a_clear_error(code: int, words: str) -> None:
    with pytest.raises(CollectorUnavailable, match=words):
        NvmlCollector("gpu01", NvmlDouble([], init_error=code))


def test_no_gpu_is_a_clear_error_and_shuts_nvml_down() -> None:
    nvml = NvmlDouble([])
    with pytest.raises(CollectorUnavailable, match="no GPU"):
        NvmlCollector("gpu01", nvml)
    assert nvml.shutdowns == 1


def test_once_writes_inventory_sample_heartbeat_to_a_valid_recording(tmp_path: Path) -> None:
    nvml = NvmlDouble(_gpus())
    out = tmp_path / "nvml.jsonl"
    sink = RecordingSink(out)
    stats = run(NvmlCollector("gpu01", nvml, interval_s=5), sink, once=True)
    sink.close()
    items = list(read_recording(out))
    assert not [i for i in items if isinstance(i, DeadLetter)]
    assert [type(i) for i in items] == [NodeInventory, GpuSample, AgentHeartbeat]
    hb = items[-1]
    assert isinstance(hb, AgentHeartbeat) and hb.data.collector == "nvml" and hb.data.interval_s == 5
    assert stats.events == {"node.inventory": 1, "gpu.sample": 1, "agent.heartbeat": 1}
    assert nvml.shutdowns == 1 and nvml.freed_sets == 1


def test_an_absurd_field_is_dropped_and_counted_the_rest_of_the_scrape_is_written(tmp_path: Path) -> None:
    gpus = _gpus()
    gpus[0].temp_c = 10**9
    out = tmp_path / "nvml.jsonl"
    sink = RecordingSink(out)
    stats = run(NvmlCollector("gpu01", NvmlDouble(gpus)), sink, once=True)
    sink.close()
    assert stats.refused == {} and stats.unused == {"refused:temp_c": 1}
    items = list(read_recording(out))
    assert [i.type for i in items] == ["node.inventory", "gpu.sample", "agent.heartbeat"]  # type: ignore[union-attr]
    sample = items[1]
    assert isinstance(sample, GpuSample)
    assert sample.data.gpus[0].temp_c is None and sample.data.gpus[0].power_w is not None
    assert sample.data.gpus[1].temp_c == gpus[1].temp_c
