"""Every shipped scenario produces the events and the labels it claims (one small run per scenario)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.labels import Label
from sim.simulator.scenario import load_scenario, shipped

NODES, STORM_NODES, HOURS = 24, 40, 6.0  # a storm needs two racks of train-a: 40 nodes
Events = list[dict[str, Any]]


def _run(name: str, tmp: Path) -> tuple[Events, list[Label]]:
    scenario = load_scenario(next(p for p in shipped() if p.stem == name))
    out = tmp / f"{name}.jsonl"
    nodes = STORM_NODES if name == "xid-storm-job-teardown" else NODES
    # The scenario alone: the everyday background noise would add its own Xids and hot scrapes.
    cfg = SimConfig(nodes, HOURS, 11, parse_start(DEFAULT_START), [scenario], noise=None)
    result = simulate(cfg, out)
    return [orjson.loads(line) for line in out.read_bytes().splitlines()], result.labels


def _inv(events: Events) -> dict[str, dict[str, Any]]:
    """The layout as the recording states it (node.inventory), which is what consumers see."""
    return {e["node"]: e["data"] for e in events if e["type"] == "node.inventory"}


def _of(events: Events, node: str, etype: str) -> Events:
    return [e for e in events if e["node"] == node and e["type"] == etype]


def _after(events: Events, label: Label) -> Events:
    return [e for e in events if e["time"] >= label.start.strftime("%Y-%m-%dT%H:%M:%SZ")]


def check_xid79(ev: Events, labels: list[Label]) -> None:
    assert len(labels) == 2 and all(lb.truth == "fault" and lb.decisive for lb in labels)
    for lb in labels:
        assert lb.gpu is not None
        bus = _inv(ev)[lb.node]["gpu_bus_ids"][lb.gpu]
        assert any(e["data"]["xid"] == 79 and e["data"]["gpu"] == lb.gpu for e in _of(ev, lb.node, "gpu.xid"))
        lines = [e["data"]["line"] for e in _of(ev, lb.node, "node.kernel")]
        assert any(f"NVRM: Xid (PCI:{bus}): 79, pid=" in ln and "fallen off the bus" in ln for ln in lines)
        gone = [e["data"]["gpus"][lb.gpu] for e in _after(_of(ev, lb.node, "gpu.sample"), lb)]
        assert gone and all(g["temp_c"] is None for g in gone[: 60 * 4])


def check_dbe(ev: Events, labels: list[Label]) -> None:
    (lb,) = labels
    xids = {e["data"]["xid"] for e in _of(ev, lb.node, "gpu.xid")}
    assert {48, 63, 64} <= xids and lb.failure_class == "gpu_memory" and lb.repair == "rma"
    assert any(
        g.get("row_remap_failure") is True for e in _of(ev, lb.node, "gpu.sample") for g in e["data"]["gpus"]
    )


def check_sbe(ev: Events, labels: list[Label]) -> None:
    (lb,) = labels
    assert lb.gpu is not None
    sbe = [e["data"]["gpus"][lb.gpu]["sbe_volatile"] for e in _after(_of(ev, lb.node, "gpu.sample"), lb)]
    assert sbe == sorted(sbe) and sbe[0] <= 2 and sbe[-1] > 1000  # slowly rising, not a step


def check_thermal(ev: Events, labels: list[Label]) -> None:
    (lb,) = labels
    samples = _after(_of(ev, lb.node, "gpu.sample"), lb)
    hot = [
        g
        for e in samples
        for g in e["data"]["gpus"]
        if "hw_thermal" in g.get("throttle_reasons", [])
    ]
    assert hot and {g["index"] for g in hot} == {0, 1, 2, 3} and max(g["temp_c"] for g in hot) >= 92
    assert samples[0]["data"]["gpus"][0]["temp_c"] < 85  # it ramps: the first sample is not yet hot


def check_nvlink(ev: Events, labels: list[Label]) -> None:
    (lb,) = labels
    assert lb.gpu is not None
    crc = [
        e["data"]["gpus"][lb.gpu].get("nvlink_crc_errors") for e in _after(_of(ev, lb.node, "gpu.sample"), lb)
    ]
    assert crc[-1] > crc[0] > 0 and any(e["data"]["xid"] == 74 for e in _of(ev, lb.node, "gpu.xid"))


def check_leaf(ev: Events, labels: list[Label]) -> None:
    inv = _inv(ev)
    leaf = inv[labels[0].node]["labels"]["network.leaf"]
    assert {lb.node for lb in labels} == {n for n, d in inv.items() if d["labels"]["network.leaf"] == leaf}
    assert all(
        lb.truth == "storm" and lb.expected == "incident" and lb.scope == labels[0].scope for lb in labels
    )
    for lb in labels:
        assert any(e["data"]["kind"] == "nccl_timeout" for e in _of(ev, lb.node, "workload.event"))


def check_driver(ev: Events, labels: list[Label]) -> None:
    (change,) = [e for e in ev if e["type"] == "change.event" and e["data"]["kind"] == "driver"]
    assert change["data"]["scope"] == {"pool": "infer-a"}
    assert {lb.node for lb in labels} == {n for n, d in _inv(ev).items() if d["pool"] == "infer-a"}
    for lb in labels:
        assert lb.truth == "change" and lb.expected == "rollback" and lb.failure_class == "change_regression"
        delay = lb.start.timestamp() - parse_start(change["time"])
        assert 180 <= delay <= 720  # symptoms start minutes after the change


def check_storm(ev: Events, labels: list[Label]) -> None:
    inv = _inv(ev)
    assert len(labels) >= 10 and len({inv[lb.node]["rack"] for lb in labels}) >= 2
    xids = [e for e in ev if e["type"] == "gpu.xid"]
    assert {e["data"]["xid"] for e in xids} == {13, 45}
    assert {e["data"]["job"] for e in xids} == {"llm-pretrain-70b"} and all("pid" in e["data"] for e in xids)
    times = sorted(lb.start.timestamp() for lb in labels)
    assert times[-1] - times[0] <= 240


def check_silent(ev: Events, labels: list[Label]) -> None:
    (lb,) = labels
    assert lb.truth == "silent" and lb.end is not None
    lo, hi = (t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (lb.start, lb.end))
    window = [
        e
        for e in _of(ev, lb.node, "gpu.sample") + _of(ev, lb.node, "agent.heartbeat")
        if lo <= e["time"] < hi
    ]
    assert window == [] and _of(ev, lb.node, "gpu.sample")  # silent only inside its window


def check_flapping(ev: Events, labels: list[Label]) -> None:
    (lb,) = labels
    statuses = [e["data"]["status"] for e in _after(_of(ev, lb.node, "node.condition"), lb)]
    assert statuses.count("False") >= 5 and statuses[-1] == "True"


def check_repeat(ev: Events, labels: list[Label]) -> None:
    first, second = labels
    assert first.node == second.node and first.gpu == second.gpu and first.end is not None
    assert second.start > first.end
    assert len([e for e in _of(ev, first.node, "gpu.xid") if e["data"]["xid"] == 48]) == 2


def check_tenant(ev: Events, labels: list[Label]) -> None:
    assert len(labels) == 4
    outcomes = {e["data"].get("repair_status", "missing") for e in ev if e["type"] == "repair.status"}
    assert outcomes == {"Completed", "Failed", "InProgress", "missing"}
    assert len([e for e in ev if e["type"] == "tenant.report"]) == 4
    assert sum(lb.end is not None for lb in labels) == 1  # only the Completed repair ends the fault


def check_noise(ev: Events, labels: list[Label]) -> None:
    assert len(labels) == 9 and all(lb.truth == "noise" and lb.expected == "none" for lb in labels)
    app = [e for e in ev if e["type"] == "gpu.xid"]
    assert [e["data"]["xid"] for e in app] == [13, 13, 13]
    spikes = [g for e in ev if e["type"] == "gpu.sample" for g in e["data"]["gpus"] if g.get("temp_c") == 91]
    assert len(spikes) == 3  # one scrape each, never a run of hot samples


CHECKS: dict[str, Callable[[Events, list[Label]], None]] = {
    "xid79-fallen-off-bus": check_xid79,
    "dbe-row-remap-failure": check_dbe,
    "sbe-rising": check_sbe,
    "thermal-fan-failure": check_thermal,
    "nvlink-crc": check_nvlink,
    "leaf-switch-nccl": check_leaf,
    "driver-rollout": check_driver,
    "xid-storm-job-teardown": check_storm,
    "silent-agent": check_silent,
    "flapping-node": check_flapping,
    "repeat-offender": check_repeat,
    "tenant-report": check_tenant,
    "noise": check_noise,
}


def test_every_shipped_scenario_has_a_check() -> None:
    assert {p.stem for p in shipped()} == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_scenario_produces_what_it_claims(name: str, tmp_path: Path) -> None:
    events, labels = _run(name, tmp_path)
    assert labels and all(lb.scenario == name for lb in labels)
    CHECKS[name](events, labels)
