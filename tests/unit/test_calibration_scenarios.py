"""Recorded scenarios of what a real fleet's background did to decisions, replayed offline end to end.

Each recording is built here event by event (the fleet's everyday noise plus one pattern from a public
incident report), written as a JSONL recording and replayed through ``breakfix replay --offline``'s
code with the shipped policy, so a regression in detection, lifecycle or guard shows up as a decision.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policy.model import load_policy
from schemas.common import NodeState
from schemas.decision import Decision
from sim.replay import OfflineReplay
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.noise_model import NoiseRates
from tests.builders import BUS, T0

SCRAPE_S = 15


class Recording:
    """Events in wire layout, written sorted by time like a recorder would."""

    def __init__(self) -> None:
        self.events: list[tuple[float, int, dict[str, Any]]] = []

    def add(self, t: float, type_: str, node: str | None, data: dict[str, Any], source: str = "rec") -> None:
        n = len(self.events)
        when = datetime.fromtimestamp(T0 + t, UTC).isoformat()
        obj = {"id": f"r{n}", "type": type_, "source": source, "time": when, "data": data}
        if node is not None:
            obj["node"] = node
        self.events.append((t, n, obj))

    def inventory(self, node: str, rack: str, pool: str = "train-a", sku: str = "H100") -> None:
        data = {"pool": pool, "rack": rack, "sku": sku, "gpus": 8, "gpu_bus_ids": BUS, "labels": {}}
        self.add(0, "node.inventory", node, data, "inventory")

    def kernel(self, t: float, node: str, line: str) -> None:
        self.add(t, "node.kernel", node, {"line": line}, "kmsg")

    def replay(self, tmp: Path) -> list[Decision]:
        path = tmp / "rec.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for _, _, e in sorted(self.events, key=lambda x: x[:2])))
        replay = OfflineReplay(load_policy())
        return [out.decision for out in replay.run(path) if out.decision is not None]


def _healthy_fleet(rec: Recording, nodes: list[str], hours: float, seed: int, sbe_per_gpu_day: float) -> dict:
    """Scrapes every 15 s with sporadic single corrected ECC errors and a rare PCIe replay on every GPU;
    returns the per-node counters so a scenario can add its own pattern on top."""
    rng = random.Random(seed)
    p_sbe = sbe_per_gpu_day * SCRAPE_S / 86_400
    counters = {n: {"sbe": [0] * 8, "pcie": [0] * 8} for n in nodes}
    for i, node in enumerate(nodes):
        rec.inventory(node, f"r{i // 16}")
    for k in range(int(hours * 3600 / SCRAPE_S)):
        t = 1 + k * SCRAPE_S
        for node in nodes:
            c = counters[node]
            for g in range(8):
                c["sbe"][g] += rng.random() < p_sbe
                c["pcie"][g] += rng.random() < 0.002
            gpus = [
                {"index": g, "temp_c": 60.0 + g, "power_w": 500.0, "util": 95.0, "sbe_volatile": c["sbe"][g],
                 "dbe_volatile": 0, "pcie_replay": c["pcie"][g], "nvlink_crc_errors": 0,
                 "row_remap_pending": False, "row_remap_failure": False}
                for g in range(8)
            ]  # fmt: skip
            c["gpus"] = gpus
            rec.add(t, "gpu.sample", node, {"gpus": gpus}, "dcgm-exporter")
    return counters


def _left_healthy(decisions: list[Decision]) -> set[str]:
    return {
        d.node for d in decisions if d.from_state is NodeState.HEALTHY and d.to_state is not NodeState.HEALTHY
    }


def test_sporadic_corrected_errors_on_a_healthy_fleet_leave_every_node_healthy(tmp_path: Path) -> None:
    """136 nodes, 2 hours, a few corrected ECC errors per GPU per day and rare PCIe replays, no fault:
    the policy before windowed rates put 121 of them in Suspect ("sbe_rate: 1 SBEs in 15s")."""
    rec = Recording()
    _healthy_fleet(rec, [f"n{i:03d}" for i in range(136)], 2.0, seed=1, sbe_per_gpu_day=4.0)
    decisions = rec.replay(tmp_path)
    assert _left_healthy(decisions) == set()
    assert not [d for d in decisions if d.trigger == "blast_radius"]


def test_a_dbe_with_row_remap_pending_is_quarantined_beside_a_suspect_storm(tmp_path: Path) -> None:
    """Twelve nodes of the pool show a real, sustained corrected-error rate (Suspect, worth a look) while
    another node logs a double-bit error with its row remap pending (Xid 48 + 63, dbe_volatile and
    row_remap_pending in the scrape): the storm opens no incident and the DBE node is quarantined."""
    rec = Recording()
    nodes = [f"n{i:03d}" for i in range(48)]
    counters = _healthy_fleet(rec, nodes, 1.5, seed=2, sbe_per_gpu_day=2.0)
    for j, node in enumerate(nodes[:12]):  # a sustained 40 SBEs an hour on one GPU each, from minute 10
        for k in range(40 * 80 // 60):
            t = 600 + j + k * 90
            counters[node]["sbe"][3] += 1
            gpus = [dict(g) for g in counters[node]["gpus"]]
            gpus[3]["sbe_volatile"] = counters[node]["sbe"][3] + 1000
            rec.add(t, "gpu.sample", node, {"gpus": gpus}, "dcgm-exporter")
    dbe = "n040"
    text = (
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0."
    )
    rec.add(3600, "gpu.xid", dbe, {"gpu": 5, "xid": 48, "message": text}, "nvml")
    rec.add(3601, "gpu.xid", dbe, {"gpu": 5, "xid": 63, "message": "Row remapping event"}, "nvml")
    gpus = [dict(g) for g in counters[dbe]["gpus"]]
    gpus[5] |= {"dbe_volatile": 1, "row_remap_pending": True}
    rec.add(3605, "gpu.sample", dbe, {"gpus": gpus}, "dcgm-exporter")
    decisions = rec.replay(tmp_path)
    suspects = {
        d.node for d in decisions if d.to_state is NodeState.SUSPECT and d.failure_class == "gpu_memory"
    }
    assert len(suspects - {dbe}) >= 10
    assert not [d for d in decisions if d.trigger == "blast_radius"]
    q = [d for d in decisions if d.node == dbe and d.to_state is NodeState.QUARANTINED]
    assert len(q) == 1 and q[0].gpu == 5 and q[0].action.value == "gpu_reset" and not q[0].held


def test_a_fatal_nvlink_link_down_resets_its_source_gpu_and_its_peers_stay_quiet(tmp_path: Path) -> None:
    """Xid 149 NETIR_LINK_EVT Fatal on the source node: NVIDIA's resolution is RESET_GPU, so the node is
    quarantined for a GPU reset on that GPU; the peers that log the same link non-fatal stay Healthy."""
    rec = Recording()
    nodes = ["src", "peer1", "peer2", *(f"n{i:02d}" for i in range(37))]  # a pool with headroom to spare
    _healthy_fleet(rec, nodes, 0.5, seed=3, sbe_per_gpu_day=1.0)
    fatal = "NVRM: Xid (PCI:0000:5d:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 07 (0x021425c6 0x00000000)"
    rec.kernel(900, "src", fatal)
    for peer in ("peer1", "peer2"):
        nonfatal = (
            "NVRM: Xid (PCI:0000:5d:00): 149, NETIR_LINK_EVT  Nonfatal  XC0 i0 Link 07 (0x021425c6 0x0)"
        )
        rec.kernel(901, peer, nonfatal)
    decisions = rec.replay(tmp_path)
    src = [d for d in decisions if d.node == "src" and d.to_state is NodeState.QUARANTINED]
    assert len(src) == 1 and src[0].gpu == 3 and src[0].action.value == "gpu_reset"
    assert not [d for d in decisions if d.node != "src"]


def test_a_jobs_crash_is_one_job_finding_and_its_crash_loops_corroborate_nothing(tmp_path: Path) -> None:
    """A job dies on 6 nodes (Xid 13 on all 8 GPUs of each, pods crash-looping): one job-level finding,
    no node transition. On one of those nodes a GPU also logged a DBE (Xid 48) that alone is below the
    act threshold: the job's crash loops on that GPU must not push it over."""
    rec = Recording()
    nodes = [f"n{i}" for i in range(6)]
    _healthy_fleet(rec, nodes, 1.0, seed=4, sbe_per_gpu_day=1.0)
    text = "Graphics SM Warp Exception on (GPC 1, TPC 0, SM 0): Out Of Range Address"
    for i, node in enumerate(nodes):
        for g in range(8):
            rec.add(1200 + i, "gpu.xid", node, {"gpu": g, "xid": 13, "message": text, "job": "llm-a"}, "nvml")
        for k in range(5):
            loop = {"kind": "crashloop", "job": "llm-a", "pod": f"llm-a-{i}", "gpus": list(range(8))}
            rec.add(1260 + i + 120 * k, "workload.event", node, loop, "kube-events")
    rec.add(1250, "gpu.xid", "n2", {"gpu": 6, "xid": 48, "message": "DBE"}, "nvml")
    decisions = rec.replay(tmp_path)
    findings = [d for d in decisions if d.trigger == "job_fault"]
    assert len(findings) == 6 and len({d.incident_id for d in findings}) == 1
    assert all(d.from_state is d.to_state is NodeState.HEALTHY for d in findings)
    assert not [d for d in decisions if d.to_state is NodeState.QUARANTINED]
    assert _left_healthy(decisions) <= {"n2"}  # the DBE alone may make n2 worth a look, never more


def test_the_simulators_fleet_background_at_four_times_its_rates_moves_no_node(tmp_path: Path) -> None:
    """The everyday background ``breakfix simulate`` adds by default (published fleet-study rates), here
    four times as often: no node may leave Healthy (the goal is at most 1% of nodes per simulated day;
    docs/evidence/calibration.md has the 1,000-node figures)."""
    busy = NoiseRates(
        sbe_median_per_day=2.0,
        pcie_bursts_per_gpu_day=0.2,
        user_xid_per_node_day=0.2,
        job_crash_per_job_day=4.0,
        nccl_timeout_per_job_day=2.0,
        thermal_blip_per_node_day=2.0,
        restart_per_node_day=0.5,
    )
    out = tmp_path / "bg.jsonl"
    result = simulate(SimConfig(48, 4.0, 5, parse_start(DEFAULT_START), noise=busy), out)
    assert result.by_type["gpu.xid"] > 0 and result.by_type["workload.event"] > 0
    decisions = [o.decision for o in OfflineReplay(load_policy()).run(out) if o.decision is not None]
    assert _left_healthy(decisions) == set()
    assert not [d for d in decisions if d.trigger == "blast_radius"]
