"""One test per fault the scored simulator run used to miss or misjudge, each failing if its
fix regressed: change attribution despite an older corroborating symptom, NVML throttle names, a
marginal NVLink, a flapping node with a hung runtime, and the subsampled temperature baseline."""

from __future__ import annotations

from detectors.fusion import fuse
from detectors.kernel_parser import parse_kernel_line
from detectors.models import WARM_UP, Ewma
from policy.lifecycle import can_act
from tests.builders import ev, sample, xid
from tests.detection_harness import CAT, CFG, POLICY, run, top


def test_xid119_after_a_driver_change_is_the_change_even_with_an_older_symptom_on_the_node() -> None:
    # driver-rollout: a latency spike from before the rollout corroborated the GSP timeout and moved
    # the episode start before the change, so the node was quarantined as gpu_hardware.
    spike = ev("workload.event", "n1", 60, {"kind": "latency_spike", "pod": "svc"})
    change = ev("change.event", None, 600, {"kind": "driver", "version": "560.28", "scope": {"pool": "p1"}})
    after = [xid("n1", 800, 119, gpu=5), ev("workload.event", "n1", 830, {"kind": "crashloop", "gpus": [5]})]
    st, now = run([spike, change, *after])
    found = fuse(st, now, CFG)
    gsp = [a for a in found if a.gpu == 5 and a.domain.value == "gpu_hardware"]
    assert gsp and gsp[0].failure_class == "change_regression"
    assert not any(can_act(a, POLICY, 0.0) for a in found)


def test_gsp_timeout_without_a_change_is_still_hardware() -> None:
    st, now = run(
        [xid("n1", 800, 119, gpu=5), ev("workload.event", "n1", 830, {"kind": "crashloop", "gpus": [5]})]
    )
    a = top(st, now)
    assert a is not None and a.failure_class == "gpu_hardware" and can_act(a, POLICY, 0.0)


def test_throttle_reasons_as_the_simulator_and_collectors_name_them_are_thermal_evidence() -> None:
    # thermal-fan-failure: the simulator wrote HW_THERMAL_SLOWDOWN, which matched nothing.
    from schemas.clock_events import clock_event_names

    names = set(clock_event_names(0x020 | 0x040))
    assert names <= set(CAT.throttle_thermal_reasons)
    hot = [sample("n1", 15 * i, g0={"temp_c": 93.0, "throttle_reasons": sorted(names)}) for i in range(1, 30)]
    st, now = run(hot)
    a = top(st, now)
    assert a is not None and a.domain.value == "thermal_power" and a.gpu == 0 and can_act(a, POLICY, 0.0)


def test_marginal_nvlink_at_40_crc_per_minute_with_xid74_acts() -> None:
    crc = [sample("n1", 15 * i, g5={"nvlink_crc_errors": 10 * i}) for i in range(1, 60)]
    st, now = run([*crc, xid("n1", 15 * 60, 74, gpu=5)])
    a = top(st, now)
    assert a is not None and a.domain.value == "nvlink_fabric" and a.gpu == 5 and can_act(a, POLICY, 0.0)


def test_marginal_nvlink_counter_alone_never_acts() -> None:
    st, now = run([sample("n1", 15 * i, g5={"nvlink_crc_errors": 10 * i}) for i in range(1, 120)])
    a = top(st, now)
    assert a is not None and a.domain.value == "nvlink_fabric" and not can_act(a, POLICY, 0.0)


HUNG = "[661560.000000] INFO: task containerd:6160 blocked for more than 120 seconds."


def test_hung_task_line_is_parsed() -> None:
    f = parse_kernel_line(HUNG)
    assert f is not None and f.kind == "hung_task" and f.bus_id is None
    assert parse_kernel_line("INFO: task blocked somewhere") is None


def _flaps(with_hung: bool) -> list:  # type: ignore[type-arg]
    out = []
    for k in range(8):
        t = 120.0 * k
        if k % 2 == 0 and with_hung:
            out.append(ev("node.kernel", "n1", t, {"line": HUNG}))
        status = "False" if k % 2 == 0 else "True"
        out.append(ev("node.condition", "n1", t, {"condition": "Ready", "status": status}))
    return out


def test_flapping_ready_with_a_hung_runtime_acts_but_flapping_alone_does_not() -> None:
    st, now = run(_flaps(with_hung=False))
    a = top(st, now)
    assert a is not None and a.domain.value == "node_os" and not can_act(a, POLICY, 0.0)
    st, now = run(_flaps(with_hung=True))
    a = top(st, now)
    assert a is not None and a.domain.value == "node_os" and can_act(a, POLICY, 0.0)


def test_baseline_scores_a_jump_but_learns_only_a_winsorised_step() -> None:
    m = Ewma()
    assert m.z(99.0) == 0.0  # no baseline yet: never scores
    for _ in range(WARM_UP + 20):
        m.learn(60.0)
    assert m.z(60.4) < 1.0 and m.z(90.0) >= 4.0
    mean = m.mean
    m.learn(500.0)
    assert m.mean - mean <= 3.0 * 1.0 * m.alpha + 1e-9  # one spike moves the mean by at most 3 sd * alpha
