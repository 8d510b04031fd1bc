"""dcgm-exporter collector against a real HTTP server on loopback serving exporter text."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.collect.base import run
from agents.collect.dcgm import DcgmCollector
from schemas.deadletter import DeadLetter
from schemas.events import AgentHeartbeat, GpuSample, GpuXid, NodeInventory
from streams.kafka.producer import check

FIXTURE = Path(__file__).parent / "collect_data" / "dcgm_exporter.prom"


class Exporter:
    """Serves ``text`` at /metrics like dcgm-exporter on :9400."""

    def __init__(self) -> None:
        self.text = FIXTURE.read_text()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = outer.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    e = Exporter()
    yield e
    e.close()


def _parsed(c: DcgmCollector) -> list[object]:
    return [check(e) for e in c.poll(0)]


def test_scrape_maps_dcgm_fields(exporter: Exporter) -> None:
    inv, sample = _parsed(DcgmCollector(exporter.url))
    assert isinstance(inv, NodeInventory) and isinstance(sample, GpuSample)
    assert inv.node == "gpu-node-07"  # from the Hostname label
    assert inv.data.gpus == 2 and inv.data.gpu_bus_ids == ["0000:18:00", "0000:2a:00"]
    assert inv.data.sku == "NVIDIA H100 80GB HBM3"
    assert inv.data.model_extra is not None and inv.data.model_extra["driver_version"] == "550.90.07"
    idle, hot = sample.data.gpus
    assert (idle.index, idle.temp_c, idle.util, idle.sbe_volatile, idle.row_remap_pending) == (
        0,
        38,
        0,
        0,
        False,
    )
    assert idle.throttle_reasons == ["gpu_idle"]
    assert (hot.temp_c, hot.power_w, hot.util) == (86, 689.455, 100)
    assert (hot.sbe_volatile, hot.dbe_volatile, hot.pcie_replay, hot.nvlink_crc_errors) == (4, 1, 12, 37)
    assert (hot.row_remap_pending, hot.row_remap_failure) == (True, False)
    assert hot.throttle_reasons == ["hw_slowdown", "sw_thermal", "hw_thermal"]  # 104 = 0x68
    assert hot.model_extra == {
        "uncorrectable_remapped_rows": 1,
        "correctable_remapped_rows": 2,
        "bus_id": "0000:2a:00",
    }


def test_fields_the_exporter_does_not_export_stay_null(exporter: Exporter) -> None:
    exporter.text = "\n".join(
        line for line in exporter.text.splitlines() if "ECC_SBE" not in line and "PCIE_REPLAY" not in line
    )
    _, sample = _parsed(DcgmCollector(exporter.url, node="n1"))
    assert isinstance(sample, GpuSample) and sample.node == "n1"
    assert all(g.sbe_volatile is None and g.pcie_replay is None for g in sample.data.gpus)


def test_xid_gauge_change_emits_gpu_xid_but_first_scrape_is_baseline(exporter: Exporter) -> None:
    c = DcgmCollector(exporter.url)
    assert not [e for e in _parsed(c) if isinstance(e, GpuXid)]  # last Xid 48 is history
    assert not [e for e in _parsed(c) if isinstance(e, GpuXid)]  # unchanged
    exporter.text = exporter.text.replace(
        'DCGM_FI_DEV_XID_ERRORS{gpu="0"', 'DCGM_FI_DEV_XID_ERRORS_OLD{gpu="0"'
    ).replace(
        "# TYPE DCGM_FI_DEV_XID_ERRORS gauge",
        "# TYPE DCGM_FI_DEV_XID_ERRORS gauge\n"
        'DCGM_FI_DEV_XID_ERRORS{gpu="0",pci_bus_id="00000000:18:00.0",Hostname="gpu-node-07"} 79',
    )
    xids = [e for e in _parsed(c) if isinstance(e, GpuXid)]
    assert [(x.data.gpu, x.data.xid) for x in xids] == [(0, 79)]
    assert xids[0].data.model_extra is not None and xids[0].data.model_extra["bus_id"] == "0000:18:00"


def test_unreachable_exporter_fails_once_runs(exporter: Exporter) -> None:
    url = exporter.url
    exporter.close()
    sink_events: list[object] = []

    class ListSink:
        def send(self, event: dict[str, object]) -> object:
            sink_events.append(event)
            return check(event)

        def flush(self) -> None: ...

        def close(self) -> None: ...

    with pytest.raises(httpx.HTTPError):
        run(DcgmCollector(url, timeout_s=1), ListSink(), once=True)
    assert sink_events == []


def test_run_rounds_heartbeat_per_node(exporter: Exporter) -> None:
    got: list[object] = []

    class ListSink:
        def send(self, event: dict[str, object]) -> object:
            parsed = check(event)
            got.append(parsed)
            return parsed

        def flush(self) -> None: ...

        def close(self) -> None: ...

    stats = run(DcgmCollector(exporter.url, interval_s=0.05), ListSink(), max_rounds=3)
    assert stats.rounds == 3
    hbs = [e for e in got if isinstance(e, AgentHeartbeat)]
    assert [(h.node, h.data.collector) for h in hbs] == [("gpu-node-07", "dcgm")] * 3
    assert stats.events["node.inventory"] == 1 and stats.events["gpu.sample"] == 3


def test_one_unconvertible_series_costs_that_series_not_the_scrape(exporter: Exporter) -> None:
    # dcgm-exporter prints this value for a field it cannot render (internal/pkg/collector/const.go).
    exporter.text += (
        'DCGM_FI_DEV_COMPUTE_PIDS{gpu="0",UUID="GPU-9f3c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",'
        'Hostname="gpu-node-07"} ERROR - FAILED TO CONVERT TO STRING\n'
        'DCGM_FI_DEV_GPU_TEMP{gpu="1",Hostname="gpu-node-07"} 9223372036854775794\n'
    )
    c = DcgmCollector(exporter.url)
    _, sample = _parsed(c)
    assert isinstance(sample, GpuSample) and [g.index for g in sample.data.gpus] == [0, 1]
    assert sample.data.gpus[1].temp_c == 86  # DCGM's "not supported" blank never overwrites a reading
    assert c.unused == {"exporter_error": 1, "blank": 1}


def _mig_line(name: str, gi: int, value: float, host: str = "hostname") -> str:
    return (
        f'{name}{{gpu="0",UUID="GPU-m",pci_bus_id="00000000:18:00.0",device="nvidia0",'
        f'modelName="NVIDIA A100",GPU_I_PROFILE="3g.40gb",GPU_I_ID="{gi}",{host}="mig-node"}} {value}\n'
    )


def test_mig_series_stay_per_instance_and_the_gpu_takes_the_worst(exporter: Exporter) -> None:
    exporter.text = (
        _mig_line("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 1, 0)
        + _mig_line("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 2, 3)
        + _mig_line("DCGM_FI_DEV_GPU_TEMP", 1, 60)
        + _mig_line("DCGM_FI_DEV_GPU_TEMP", 2, 61)
        + _mig_line("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", 2, 0x40)
        + _mig_line("DCGM_FI_DEV_XID_ERRORS", 1, 0)
        + _mig_line("DCGM_FI_DEV_XID_ERRORS", 2, 0)
    )
    c = DcgmCollector(exporter.url)
    _, sample = _parsed(c)
    assert isinstance(sample, GpuSample) and sample.node == "mig-node"
    (gpu,) = sample.data.gpus
    assert (gpu.dbe_volatile, gpu.temp_c, gpu.throttle_reasons) == (3, 61, ["hw_thermal"])
    mig = (gpu.model_extra or {})["mig"]
    assert [(m["gpu_instance_id"], m["profile"], m["dbe_volatile"], m["temp_c"]) for m in mig] == [
        (1, "3g.40gb", 0, 60.0),
        (2, "3g.40gb", 3, 61.0),
    ]
    exporter.text = exporter.text.replace(
        'GPU_I_ID="2",hostname="mig-node"} 0', 'GPU_I_ID="2",hostname="mig-node"} 94'
    )
    xids = [e for e in _parsed(c) if isinstance(e, GpuXid)]
    assert [(x.data.gpu, x.data.xid, (x.data.model_extra or {})["gpu_instance"]) for x in xids] == [
        (0, 94, 2)
    ]


# The metric names of dcgm-exporter's shipped etc/default-counters.csv (NVIDIA/dcgm-exporter@d5e5f510).
DEFAULT_COUNTERS = [
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
]


def test_the_default_exporter_configuration_is_named_once_with_the_lines_to_add(
    exporter: Exporter, caplog: pytest.LogCaptureFixture
) -> None:
    exporter.text = "".join(f'{n}{{gpu="0",UUID="GPU-d",hostname="n1"}} 1\n' for n in DEFAULT_COUNTERS)
    c = DcgmCollector(exporter.url)
    _parsed(c)
    _parsed(c)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert sorted(c.missing) == ["ECC", "clock events", "row remapping"]
    for line in ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL, counter", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS, gauge"):
        assert line in warnings[0]
    assert "DCGM_FI_DEV_XID_ERRORS" not in warnings[0]


_NAMES = [
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "DCGM_FI_DEV_ROW_REMAP_PENDING",
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_EXP_XID_ERRORS_COUNT",
    "DCGM_EXP_CLOCK_EVENTS_COUNT",
    "DCGM_FI_DEV_SM_CLOCK",
]
_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["ERROR - FAILED TO CONVERT TO STRING", "9223372036854775794", "140737488355328", "NaN"]),
)
_LABEL = st.text(alphabet="abcXYZ019 _-./:@", max_size=12)


@st.composite
def _scrape_line(draw: st.DrawFn) -> str:
    labels = {
        "gpu": draw(st.one_of(st.integers(-2, 70).map(str), _LABEL)),
        "hostname": draw(st.one_of(st.just("node-1"), _LABEL)),
        "pci_bus_id": draw(st.one_of(st.just("00000000:3B:00.0"), _LABEL)),
    }
    if draw(st.booleans()):
        labels["GPU_I_ID"] = draw(st.one_of(st.integers(0, 14).map(str), _LABEL))
    for extra in ("xid", "err_code", "clock_event"):
        if draw(st.booleans()):
            labels[extra] = draw(st.one_of(st.integers(-5, 20_000).map(str), _LABEL))
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    line = f"{draw(st.sampled_from(_NAMES))}{{{body}}} {draw(_VALUES)}"
    return draw(st.sampled_from([line, line[: len(line) // 2], "# TYPE x gauge", ""]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_scrape_line(), max_size=12), min_size=2, max_size=3))
def test_no_scrape_makes_the_collector_raise_or_send_an_invalid_event(scrapes: list[list[str]]) -> None:
    texts = ["\n".join(lines) for lines in scrapes]
    c = DcgmCollector("http://x/metrics", node=None, fetch=lambda _u, _t: texts.pop(0))
    while texts:
        refused = [e for e in (check(ev) for ev in c.poll(0)) if isinstance(e, DeadLetter)]
        assert not refused, refused
