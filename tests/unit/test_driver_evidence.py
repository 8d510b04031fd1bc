"""Real driver lines become the right failure domain, GPU and action through the one fusion path.

Line shapes are the real ones (sources in tests/corpus/extra_cases.jsonl and the shared corpus); the
bus ids are the test inventory's so the GPU index can be checked."""

from __future__ import annotations

from detectors.fusion import fuse
from detectors.state import DetectState
from detectors.step import detect
from policy.lifecycle import can_act
from tests.builders import ev, inventory, sample, xid
from tests.detection_harness import CAT, CFG, POLICY, run, top


def _k(t: float, line: str):  # type: ignore[no-untyped-def]
    return ev("node.kernel", "n1", t, {"line": line})


def test_joined_fallen_off_the_bus_message_keeps_its_gpu_and_reboots() -> None:
    joined = (
        "NVRM: The NVIDIA GPU 0000:5d:00.0\nNVRM: (PCI ID: 10de:2901) installed in this system has\n"
        "NVRM: fallen off the bus and is not responding to commands."
    )
    st, now = run([_k(10, joined)])
    a = top(st, now)
    assert a is not None and a.gpu == 3 and a.decisive and a.action.value == "reboot"
    assert can_act(a, POLICY, 0.0)


def test_mig_contained_error_is_the_applications_on_that_gpu() -> None:
    line = (
        "NVRM: Xid (PCI:0000:2a:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9). "
        "RST: No, D-RST: No"
    )
    st, _ = run([_k(10, line)])
    [slot] = st.slots.values()
    assert (slot.gpu, slot.attribution) == (1, "application") and "MIG GPU instance 5" in slot.detail


def test_contained_error_the_driver_marked_for_reset_proposes_a_gpu_reset() -> None:
    line = "NVRM: Xid (PCI:0000:2a:00): 94, pid=7194, Contained: SM (0x1). RST: Yes, D-RST: No"
    st, now = run([_k(10, line)])
    a = top(st, now)
    assert a is not None and (a.gpu, a.domain.value, a.action.value) == (1, "gpu_memory", "gpu_reset")
    assert not can_act(a, POLICY, 0.0)  # one line alone: not decisive, needs corroboration


def test_nonfatal_nvlink5_lines_never_raise_suspicion_and_a_fatal_one_resets_the_gpu() -> None:
    nonfatal = (
        "NVRM: Xid (PCI:0000:18:00): 149, NETIR_BER_EVENT Nonfatal XC0 i0 Link 01 (0x00082226 0x00000001)"
    )
    st, now = run([_k(10 + i, nonfatal) for i in range(50)])
    assert all(a.confidence == 0 for a in fuse(st, now, CFG))
    fatal = "NVRM: Xid (PCI:0000:18:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x00000000)"
    st, now = run([_k(10, fatal)])
    a = top(st, now)
    assert a is not None and (a.gpu, a.domain.value, a.action.value) == (0, "nvlink_fabric", "gpu_reset")
    # NVIDIA's resolution for a fatal link error is a GPU reset: the source node acts on it alone.
    assert a.decisive and can_act(a, POLICY, 0.0)


def test_xid154_and_the_nvml_recovery_field_are_one_source() -> None:
    line = "NVRM: Xid (PCI:0000:9a:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset"
    st, now = run([_k(10, line + " Required)"), sample("n1", 20, g4={"recovery_action": "gpu_reset"})])
    a = top(st, now)
    assert a is not None and a.gpu == 4 and a.signals == 1 and len(st.slots) == 1


def test_xid154_follows_the_driver_and_a_change_back_to_none_withdraws_it() -> None:
    head = "NVRM: Xid (PCI:0000:9a:00): 154, GPU recovery action changed from "
    to_reset = head + "0x0 (None) to 0x1 (GPU Reset Required)"
    back = head + "0x1 (GPU Reset Required) to 0x0 (None)"
    st, now = run([_k(10, to_reset)])
    a = top(st, now)
    assert a is not None and (a.gpu, a.action.value) == (4, "gpu_reset") and a.decisive
    st, now = run([_k(10, to_reset), _k(20, back)])
    assert all(a.confidence == 0 for a in fuse(st, now, CFG))


def test_one_ignorable_or_application_xid_is_never_hardware_evidence() -> None:
    for code in (43, 63, 92, 137, 157, 8, 32, 68):
        st, now = run([xid("n1", 10, code, gpu=2)])
        assert not any(a.attribution == "hardware" and a.confidence > 0 for a in fuse(st, now, CFG)), code


def test_xid64_alone_resets_the_gpu_and_with_a_failed_remap_sample_goes_to_rma() -> None:
    st, now = run([xid("n1", 10, 64, gpu=2)])
    a = top(st, now)
    assert a is not None and a.action.value == "gpu_reset" and a.decisive
    # Corroborated: NVML says the remapper has no spare rows left: the product goes further, with reasons.
    st, now = run([xid("n1", 10, 64, gpu=2), sample("n1", 20, g2={"row_remap_failure": True})])
    a = top(st, now)
    assert a is not None and a.gpu == 2 and a.action.value == "rma" and len(a.reasons) == 2


def test_fatal_sxid_is_fabric_evidence_for_the_node_and_nonfatal_or_continuations_are_not() -> None:
    fatal = "[6781753.400584] nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 48 LTSSM Fault Up"
    more = "[6781753.404848] nvidia-nvswitch2: SXid (PCI:0000:07:00.0): 20034, Severity 1 Engine instance 60"
    st, now = run([_k(10, fatal), _k(10, more)])
    a = top(st, now)
    assert a is not None and (a.gpu, a.domain.value, a.action.value) == (None, "nvlink_fabric", "gpu_reset")
    assert "link 48" in a.reasons[0]
    nonfatal = (
        "nvidia-nvswitch1: SXid (PCI:0000:0a:00.0): 22013, Non-fatal, Link 57 Minion Link DLREQ interrupt"
    )
    st, now = run([_k(10, nonfatal)])
    assert all(a.confidence == 0 for a in fuse(st, now, CFG))


def test_fabric_manager_fatal_error_is_read_like_the_kernels_sxid() -> None:
    line = (
        "[Jul 23 2024 07:53:55] [ERROR] [tid 841] detected NVSwitch fatal error 20034 on fid 0 on NVSwitch "
        "pci bus id 00000000:86:00.0 physical id 3 port 33"
    )
    st, now = run([_k(10, line)])
    a = top(st, now)
    assert a is not None and a.domain.value == "nvlink_fabric" and "link 33" in a.reasons[0]


def test_driver_faults_without_an_xid_are_gpu_evidence_on_the_right_gpu() -> None:
    st, now = run([_k(10, "NVRM: GPU 0000:ab:00.0: RmInitAdapter failed! (0x24:0x72:1568)")])
    a = top(st, now)
    assert a is not None and (a.gpu, a.domain.value, a.action.value) == (5, "gpu_hardware", "gpu_reset")
    reset = (
        "NVRM: nvAssertOkFailedNoLog: Assertion failed: Reset required [NV_ERR_RESET_REQUIRED] (0x00000062)"
    )
    gsp = "NVRM: GPU6 _kgspBootGspRm: unexpected WPR2 already up, cannot proceed with booting GSP"
    st, now = run([_k(10, reset), _k(20, gsp)])
    a = top(st, now)
    assert a is not None and (a.gpu, a.domain.value, a.action.value) == (None, "gpu_hardware", "gpu_reset")
    assert a.signals == 2 and can_act(a, POLICY, 0.0)  # two independent driver faults corroborate


def test_soft_lockup_in_an_nvidia_irq_thread_is_the_gpu_driver_elsewhere_the_os() -> None:
    nv = "watchdog: BUG: soft lockup - CPU#12 stuck for 22s! [irq/180-nvidia:1412]"
    st, now = run([_k(10, nv)])
    a = top(st, now)
    assert a is not None and (a.domain.value, a.action.value) == ("gpu_hardware", "reboot")
    other = "watchdog: BUG: soft lockup - CPU#18 stuck for 27s! [python3:2254956]"
    st, now = run([_k(10, other)])
    a = top(st, now)
    assert a is not None and a.domain.value == "node_os" and not can_act(a, POLICY, 0.0)


def test_a_storm_of_ignorable_xids_is_one_slot_audited_at_powers_of_two() -> None:
    st = DetectState("n1")
    detect(st, inventory("n1"), CAT, 0.0)
    emitted = 0
    for i in range(100):
        e = xid("n1", 10 + i, 43, gpu=1)
        emitted += len(detect(st, e, CAT, e.time.timestamp()))
        fuse(st, e.time.timestamp(), CFG)
    assert emitted == 7 and len(st.slots) == 1  # counts 1, 2, 4, ..., 64


def test_an_xid_from_a_mig_instance_names_the_instance() -> None:
    st, _ = run([xid("n1", 10, 31, gpu=2, gpu_instance=3)])
    [slot] = st.slots.values()
    assert slot.gpu == 2 and "MIG GPU instance 3" in slot.detail


def test_xid45_that_names_its_cause_is_sympathetic_never_the_jobs_fault() -> None:
    # NVIDIA/open-gpu-kernel-modules#1150: cleanup Xids on four GPUs of one job after NVLink Xids.
    text = "NVRM: Xid (PCI:0000:dc:00): 45, pid=1818990, name=python3, Ch 00000001 caused by previous Xid 149"
    events = [xid("n1", 10 + g, 45, gpu=g, job="train-1", message=text) for g in range(4)]
    st, now = run(events)
    assert {s.attribution for s in st.slots.values()} == {"sympathetic"}
    assert fuse(st, now, CFG) == [] and not st.app_xid_gpus
