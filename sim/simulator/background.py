"""Healthy telemetry for every node, one 15 s tick at a time, vectorised with numpy.

Per node and tick: a gpu.sample (per-GPU noise around a load curve: training runs flat out with a
checkpoint dip every 30 minutes, inference follows the day); every fourth scrape also carries the
slow health counters, and the agent's heartbeat (collector ``nvml``, every 60 s). Every 5 minutes
kubelet resyncs Ready; now and then a benign kernel line or an inference latency blip; per pool, the
scheduler's view every minute. Injectors rewrite a node's readings through ``patch`` and silence
channels through ``muted``; nothing here knows about faults.

With ``noise`` (the default) the fleet also reports what a real fleet's healthy nodes do
(``sim.simulator.noise_model``): corrected ECC errors and PCIe replays in the counters, user
programs' Xids, job crashes, NCCL timeouts, thermal blips and restarts.
"""

from __future__ import annotations

import math

import numpy as np

from sim.simulator.faults.base import CONDITION, HEARTBEAT, SAMPLE, Fault, Timed, event
from sim.simulator.fleet import GPUS_PER_NODE, Fleet, Node
from sim.simulator.noise_model import FleetNoise, NoiseRates
from sim.simulator.rand import randint

TICK_S = 15
HEALTH_EVERY = 4  # scrapes; the slow health fields (row remap, PCIe replay, NVLink CRC) once a minute
CONDITION_EVERY = 20  # scrapes; kubelet's periodic Ready resync (5 minutes)
KERNEL_PER_HOUR = 0.5
LATENCY_BLIP_PER_HOUR = 1 / 12

BENIGN_KERNEL = (
    "systemd[1]: Started Session {k} of User root.",
    "IPv6: ADDRCONF(NETDEV_CHANGE): veth{k:x}: link becomes ready",
    "cni0: port {p}(veth{k:x}) entered forwarding state",
    "EXT4-fs (nvme0n1p2): re-mounted. Opts: (null). Quota mode: none.",
    "nvidia-persistenced[2113]: device 0000:{b}.0 - persistence mode enabled.",
    'audit: type=1400 audit({k}.512:88): apparmor="STATUS" operation="profile_replace" name="cri-containerd"',
)


class Background:
    def __init__(self, fleet: Fleet, seed: int, noise: NoiseRates | None = None) -> None:
        self.fleet = fleet
        self.seed = seed
        n = len(fleet.nodes)
        self.rng = np.random.default_rng(seed)
        self.noise = (
            None if noise is None else FleetNoise(fleet, np.random.default_rng([seed, 24]), TICK_S, noise)
        )
        self.offset = [randint(seed, 0, TICK_S - 2, "offset", node.name) for node in fleet.nodes]
        self.training = np.array([node.workload == "training" for node in fleet.nodes])
        self.idle_c = np.array([node.sku.idle_c for node in fleet.nodes])[:, None]
        self.load_c = np.array([node.sku.load_c for node in fleet.nodes])[:, None]
        self.idle_w = np.array([node.sku.idle_w for node in fleet.nodes])[:, None]
        self.span_w = np.array([node.sku.max_w * 0.92 - node.sku.idle_w for node in fleet.nodes])[:, None]
        # Cooling differs by slot (front GPUs run cooler): a fixed bias per GPU.
        self.bias = self.rng.normal(0.0, 2.0, (n, GPUS_PER_NODE))
        self.phase = np.array([randint(seed, 0, 29, "ckpt", node.job) for node in fleet.nodes])
        self.pools = fleet.pools()

    def _util(self, t: int) -> np.ndarray:
        hour = (t % 86_400) / 3600
        diurnal = 0.3 + 0.55 * 0.5 * (1 - math.cos(2 * math.pi * (hour - 4) / 24))
        minute = (t // 60) % 30
        train = np.where(self.phase == minute, 15.0, 96.0)
        base = np.where(self.training, train, diurnal * 100)[:, None]
        noise = self.rng.normal(0.0, 1.0, (len(self.fleet.nodes), GPUS_PER_NODE))
        sd = np.where(self.training, 2.0, 6.0)[:, None]
        return np.clip(base + noise * sd, 0, 100)

    def tick(
        self, k: int, t0: int, muted: set[tuple[str, int]], patch: dict[int, list[Fault]]
    ) -> list[Timed]:
        util = self._util(t0)
        n = len(self.fleet.nodes)
        temp = np.rint(
            self.idle_c + self.load_c * util / 100 + self.bias + self.rng.normal(0, 0.8, util.shape)
        )
        power = np.round(self.idle_w + self.span_w * util / 100 + self.rng.normal(0, 6, util.shape), 1)
        u_l, t_l, p_l = np.rint(util).astype(int).tolist(), temp.astype(int).tolist(), power.tolist()
        draw = self.rng.random((n, 2)).tolist()
        p_kernel = KERNEL_PER_HOUR * TICK_S / 3600
        p_blip = LATENCY_BLIP_PER_HOUR * TICK_S / 3600
        noise = self.noise
        out: list[Timed] = [] if noise is None else noise.step(t0)
        zeros = [0] * GPUS_PER_NODE
        sbe_l = pcie_l = [zeros] * n
        if noise is not None:
            sbe_l, pcie_l = noise.sbe.tolist(), noise.pcie.tolist()
        for i, node in enumerate(self.fleet.nodes):
            t = t0 + self.offset[i]
            name = node.name
            phase = (k + i) % HEALTH_EVERY == 0
            restarting = noise is not None and noise.silent(i, t)
            if (not muted or (SAMPLE, i) not in muted) and not restarting:
                sbe = sbe_l[i]
                gpus = [
                    {
                        "index": g,
                        "temp_c": tg,
                        "power_w": pg,
                        "util": ug,
                        "sbe_volatile": sbe[g],
                        "dbe_volatile": 0,
                    }
                    for g, tg, pg, ug in zip(range(GPUS_PER_NODE), t_l[i], p_l[i], u_l[i], strict=True)
                ]
                if phase:
                    pcie = pcie_l[i]
                    for g, r in enumerate(gpus):
                        r.update(
                            row_remap_pending=False,
                            row_remap_failure=False,
                            pcie_replay=pcie[g],
                            nvlink_crc_errors=0,
                        )
                if noise is not None and i in noise.hot:
                    g, peak = noise.hot[i]
                    gpus[g]["temp_c"] = max(gpus[g]["temp_c"], peak)
                    gpus[g]["throttle_reasons"] = ["sw_thermal"]
                for fault in patch.get(i, ()):
                    fault.patch(node, t, gpus)
                out.append(event(t, "gpu.sample", "dcgm-exporter", name, {"gpus": gpus}))
            if restarting:
                continue
            if phase and (not muted or (HEARTBEAT, i) not in muted):
                hb = {"collector": "nvml", "interval_s": 60}
                out.append(event(t + 1, "agent.heartbeat", "node-agent", name, hb))
            if (k + i) % CONDITION_EVERY == 0 and (not muted or (CONDITION, i) not in muted):
                ready = {
                    "condition": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
                out.append(event(t, "node.condition", "kubelet", name, ready))
            if draw[i][0] < p_kernel:
                out.append(event(t, "node.kernel", "kmsg", name, {"line": self._kernel_line(node, t)}))
            if node.workload != "training" and draw[i][1] < p_blip:
                blip = {"kind": "latency_spike", "job": node.job, "pod": f"{node.job}-{i:05d}", "value": 1.3}
                out.append(event(t, "workload.event", "kube-events", name, blip))
        if t0 % 60 == 0:
            out += self._scheduler(t0, util)
        return out

    def _kernel_line(self, node: Node, t: int) -> str:
        k = randint(self.seed, 0, 10**6, node.name, t)
        template = BENIGN_KERNEL[k % len(BENIGN_KERNEL)]
        return template.format(k=k, p=1 + k % 9, b=node.sku.bus_ids[k % GPUS_PER_NODE])

    def _scheduler(self, t: int, util: np.ndarray) -> list[Timed]:
        out: list[Timed] = []
        busy = util.mean(axis=1)
        for pool in self.pools:
            idx = [n.index for n in self.fleet.in_pool(pool)]
            load = float(busy[idx].mean()) / 100
            data = {
                "pool": pool,
                "pending_pods": int(load * 12),
                "unschedulable": {"Insufficient nvidia.com/gpu": int(load * 4)} if load > 0.8 else {},
                "evictions": 0,
                "allocatable_gpus": len(idx) * GPUS_PER_NODE,
            }
            out.append(event(t, "scheduler.state", "kube-scheduler", None, data))
        return out
