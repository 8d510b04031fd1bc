"""The driver's recommended GPU recovery action (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION): read by the NVML
collector through the test double's per-field return codes, and turned into evidence by detection."""

from __future__ import annotations

import pynvml

from agents.collect.nvml import NvmlCollector
from policy.lifecycle import can_act
from schemas.events import GpuSample
from streams.kafka.producer import check
from tests.builders import sample
from tests.detection_harness import POLICY, run, top
from tests.fakes.nvml_double import FakeGpu, NvmlDouble


def _sample(gpus: list[FakeGpu]) -> GpuSample:
    event = check(NvmlCollector("gpu01", NvmlDouble(gpus)).sample())
    assert isinstance(event, GpuSample)
    return event


def test_nvml_reports_the_drivers_recovery_action_by_name() -> None:
    gpus = [
        FakeGpu(pci=(0, 0x18, 0), recovery_action=pynvml.NVML_GPU_RECOVERY_ACTION_GPU_RESET),
        FakeGpu(pci=(0, 0x2A, 0), recovery_action=pynvml.NVML_GPU_RECOVERY_ACTION_NONE),
        FakeGpu(pci=(0, 0x3B, 0), recovery_action=None),  # a driver without the field
        FakeGpu(pci=(0, 0x5D, 0), recovery_action=pynvml.NVML_GPU_RECOVERY_ACTION_DRAIN_P2P),
    ]
    got = [g.recovery_action for g in _sample(gpus).data.gpus]
    assert got == ["gpu_reset", "none", None, "drain_p2p"]


def test_an_old_nvml_without_field_values_reads_null_and_the_rest_of_the_gpu() -> None:
    gpu = FakeGpu(errors={"field_values": pynvml.NVML_ERROR_FUNCTION_NOT_FOUND})
    (reading,) = _sample([gpu]).data.gpus
    assert reading.recovery_action is None and reading.temp_c == 40


def test_a_recommended_gpu_reset_is_decisive_gpu_evidence_until_the_driver_reads_none() -> None:
    st, now = run([sample("n1", 15, g2={"recovery_action": "gpu_reset"})])
    finding = top(st, now)
    assert finding is not None and finding.gpu == 2 and finding.failure_class == "gpu_hardware"
    assert finding.action.value == "gpu_reset" and can_act(finding, POLICY, 0.0)
    st, now = run(
        [
            sample("n1", 15, g2={"recovery_action": "gpu_reset"}),
            sample("n1", 30, g2={"recovery_action": "none"}),
        ]
    )
    assert top(st, now) is None


def test_drain_p2p_alone_is_not_enough_to_act() -> None:
    st, now = run([sample("n1", 15, g0={"recovery_action": "drain_p2p"})])
    finding = top(st, now)
    assert finding is None or not can_act(finding, POLICY, 0.0)
