"""How confidence is fused (docs/concepts/design.md, "Detection"), point by point, each with an
example that fails if it broke."""

from __future__ import annotations

from detectors.fusion import fuse
from detectors.kernel_parser import parse_kernel_line
from detectors.state import DetectState
from detectors.step import detect
from policy.lifecycle import can_act
from tests.builders import T0, ev, inventory, sample, xid
from tests.detection_harness import CAT, CFG, POLICY, run, top


def test_one_thermal_spike_never_reaches_the_act_threshold() -> None:
    """A one-scrape blip (hot and throttling once) is at most weak model evidence, below Suspect; the
    same reading on the next scrape is thermal evidence."""
    warm = [sample("n1", 15 * i) for i in range(1, 40)]
    blip = sample("n1", 15 * 40, g3={"temp_c": 99.0, "throttle_reasons": ["hw_thermal"]})
    st, now = run([*warm, blip])
    a = top(st, now)
    assert a is None or (a.confidence < POLICY.thresholds.suspect_enter and not can_act(a, POLICY, 0.0))
    again = sample("n1", 15 * 41, g3={"temp_c": 99.0, "throttle_reasons": ["hw_thermal"]})
    st, now = run([*warm, blip, again])
    a = top(st, now)
    assert a is not None and a.domain.value == "thermal_power"
    assert a.confidence <= CFG.single_cap + 0.15 and not can_act(a, POLICY, 0.0)


def test_sustained_corroborated_thermal_fault_does_act() -> None:
    hot = [
        sample("n1", 15 * i, g3={"temp_c": 95.0, "throttle_reasons": ["hw_thermal"]}) for i in range(1, 30)
    ]
    st, now = run(hot)
    a = top(st, now)
    assert a is not None and a.gpu == 3 and can_act(a, POLICY, 0.0)


def test_xid79_alone_acts_only_when_policy_allows_single_signal_action() -> None:
    st, now = run([xid("n1", 10, 79, gpu=2)])
    a = top(st, now)
    assert a is not None and a.decisive and a.gpu == 2 and a.action.value == "reboot"
    assert can_act(a, POLICY, 0.0)
    strict = POLICY.model_copy(update={"single_signal_classes": []})
    assert not can_act(a, strict, 0.0)


def test_same_xid_from_two_collectors_is_one_source_not_corroboration() -> None:
    line = "NVRM: Xid (PCI:0000:18:00): 48, pid=2241, DBE (0x1) has been detected on GPU in the framebuffer"
    st, now = run([xid("n1", 10, 48, gpu=0), ev("node.kernel", "n1", 10, {"line": line})])
    a = top(st, now)
    assert a is not None and a.signals == 1 and a.confidence <= CFG.single_cap


def test_workload_symptom_on_the_same_gpu_corroborates() -> None:
    st, now = run(
        [
            xid("n1", 10, 48, gpu=0),
            ev("workload.event", "n1", 20, {"kind": "crashloop", "pod": "p", "gpus": [0]}),
        ]
    )
    a = top(st, now)
    assert a is not None and a.signals == 2 and a.confidence > CFG.single_cap


def test_xid13_on_all_gpus_of_one_job_is_the_jobs_fault() -> None:
    st, now = run([xid("n1", 10 + g, 13, gpu=g, job="train-7") for g in range(8)])
    a = top(st, now)
    assert a is not None and a.attribution == "application" and a.job == "train-7"
    assert not can_act(a, POLICY, 0.0)
    assert all(x.attribution != "hardware" for x in fuse(st, now, CFG))


def test_symptoms_after_a_driver_change_on_the_pool_are_attributed_to_the_change() -> None:
    change = ev("change.event", None, 5, {"kind": "driver", "version": "550.90", "scope": {"pool": "p1"}})
    conds = [
        ev("node.condition", "n1", 600 + 60 * i, {"condition": "Ready", "status": "False"}) for i in range(4)
    ]
    # Xid 119 (GSP RPC timeout, NVIDIA: RESET_GPU) is hardware evidence; the Xid 38 this test used before is
    # one NVIDIA says to ignore, so it no longer adds anything.
    st, now = run([change, *conds, xid("n1", 900, 119)])
    found = fuse(st, now, CFG)
    assert {a.failure_class for a in found if a.attribution != "application"} == {"change_regression"}
    a = top(st, now)
    assert a is not None and a.failure_class == "change_regression" and a.action.value == "rollback_change"


def test_nvlink_xid_right_after_another_gpus_failure_is_sympathetic() -> None:
    st, now = run([xid("n1", 10, 79, gpu=1), xid("n1", 20, 74, gpu=4)])
    assert all(not (a.gpu == 4 and a.domain.value == "nvlink_fabric") for a in fuse(st, now, CFG))


def test_silent_agent_is_monitoring_evidence_never_fault_evidence() -> None:
    from detectors.step import tick

    st, _ = run([ev("agent.heartbeat", "n1", 60, {"collector": "nvml", "interval_s": 60})])
    tick(st, CAT, T0 + 600)
    assessments = fuse(st, T0 + 600, CFG)
    assert [a.attribution for a in assessments] == ["monitoring"]
    assert not can_act(assessments[0], POLICY, 0.0)


def test_flapping_ready_condition_does_not_flap_the_confidence_across_the_threshold() -> None:
    st = DetectState("n1")
    detect(st, inventory("n1"), CAT, T0)
    crossings, above = 0, False
    threshold = POLICY.thresholds.act["reboot"]
    for i in range(200):
        status = "False" if i % 2 else "True"
        e = ev("node.condition", "n1", 30 * i, {"condition": "Ready", "status": status})
        detect(st, e, CAT, e.time.timestamp())
        a = top(st, e.time.timestamp())
        now_above = a is not None and a.confidence >= threshold
        crossings += now_above != above
        above = now_above
    assert crossings == 0


def test_memory_per_node_is_bounded_however_long_the_stream() -> None:
    st = DetectState("n1")
    detect(st, inventory("n1"), CAT, T0)
    for i in range(3000):
        e = xid("n1", 10 * i, 13, gpu=i % 8, job=f"job-{i}")
        detect(st, e, CAT, e.time.timestamp())
        detect(
            st, ev("node.kernel", "n1", 10 * i, {"line": f"unrecognised line {i}"}), CAT, e.time.timestamp()
        )
    assert len(st.app_xid_gpus) <= 16 and len(st.slots) <= 64
    assert all(len(s.event_ids) <= 8 for s in st.slots.values())
    assert st.unparsed_kernel_lines == 3000


# Real NVRM line shapes, as printed by drivers and quoted in public sources: NVIDIA's "XID Errors"
# documentation (docs.nvidia.com/deploy/xid-errors), kubernetes/node-problem-detector's kernel-monitor
# NVIDIA rules, and GPU fleet post-mortems (dmesg excerpts). Each maps bus id -> GPU index via inventory.
CORPUS = [
    (
        "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.",
        ("xid", 79, "0000:3b:00"),
    ),
    (
        "NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
        ("xid", 79, "0000:3b:00"),
    ),
    ("NVRM: Xid (PCI:0000:86:00): 79, GPU has fallen off the bus.", ("xid", 79, "0000:86:00")),
    (
        "[ 8823.261722] NVRM: Xid (0000:86:00): 13, Graphics SM Warp Exception on (GPC 0, TPC 1)",
        ("xid", 13, "0000:86:00"),
    ),
    (
        "NVRM: Xid (PCI:00000000:18:00.0): 48, pid=2241, DBE (0x1) has been detected on GPU "
        "in the framebuffer",
        ("xid", 48, "0000:18:00"),
    ),
    (
        "kernel: NVRM: Xid (PCI:0000:5d:00): 63, pid=901, name=trainer, Row Remapper: New row "
        "marked for remapping, reset gpu to activate.",
        ("xid", 63, "0000:5d:00"),
    ),
    (
        "NVRM: Xid (PCI:0000:18:00): 64, pid=1, name=x, Row Remapper: Failed to remap row",
        ("xid", 64, "0000:18:00"),
    ),
    (
        "NVRM: Xid (PCI:0000:ba:00): 119, pid=3344, name=python, Timeout after 6s of waiting "
        "for RPC response from GPU0 GSP!",
        ("xid", 119, "0000:ba:00"),
    ),
    (
        "nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 32 egress non-posted PRIV error",
        ("sxid", 12028, "0000:05:00"),
    ),
    ("NVRM: GPU at PCI:0000:3b:00: GPU-4b5a9e2c: GPU has fallen off the bus.", ("xid", 79, "0000:3b:00")),
    ("NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.", ("xid", 79, "0000:3b:00")),
    ("mce: [Hardware Error]: Machine check events logged", ("mce", None, None)),
]


def test_parser_handles_the_corpus_of_real_line_shapes() -> None:
    for line, (kind, code, bus) in CORPUS:
        f = parse_kernel_line(line)
        assert f is not None, line
        assert (f.kind, f.xid, f.bus_id) == (kind, code, bus), line
    assert parse_kernel_line("NVRM: loading NVIDIA UNIX x86_64 Kernel Module 550.90.07") is None


def test_kernel_line_maps_bus_id_to_gpu_index_via_inventory() -> None:
    st, now = run(
        [ev("node.kernel", "n1", 5, {"line": "NVRM: Xid (PCI:0000:3a:00): 79, pid=1, name=x, fallen"})]
    )
    a = top(st, now)
    assert a is not None and a.gpu == 2


def test_a_dbe_with_its_row_remap_pending_is_decisive_together() -> None:
    """Xid 48 and row_remap_pending on one GPU: NVIDIA's memory error management applies the remap only
    at a GPU reset, so the pair is a decisive node-local fault (never frozen by another signal's storm)."""
    warm = [sample("n1", 15 * i) for i in range(1, 5)]
    st, now = run(
        [*warm, xid("n1", 80, 48, gpu=5), sample("n1", 90, g5={"dbe_volatile": 1, "row_remap_pending": True})]
    )
    a = top(st, now)
    assert a is not None and a.gpu == 5 and a.domain.value == "gpu_memory" and a.decisive
    st, now = run([*warm, xid("n1", 80, 48, gpu=5)])
    alone = top(st, now)
    assert alone is not None and not alone.decisive


def test_capacity_a_node_has_lost_on_its_own() -> None:
    """A GPU fallen off the bus is one GPU gone; a NotReady node has lost all of them while the reading
    is current. The guard's headroom counts these as removed."""
    from detectors.capacity import READY_FRESH_S, lost_gpus

    st, now = run([xid("n1", 10, 79, gpu=2)])
    assert lost_gpus(st, 8, now) == 1
    not_ready = ev(
        "node.condition", "n1", 20, {"condition": "Ready", "status": "False", "reason": "KubeletNotReady"}
    )
    st, now = run([xid("n1", 10, 79, gpu=2), not_ready])
    assert lost_gpus(st, 8, now) == 8
    assert lost_gpus(st, 8, now + READY_FRESH_S + 1) == 1
