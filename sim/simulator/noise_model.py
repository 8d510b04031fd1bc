"""The ordinary background of a real GPU fleet, on by default: what healthy nodes report every day.

A simulator whose healthy nodes are silent flatters any detector. These are the everyday events a
production fleet logs while nothing is broken, each at a rate taken from a published fleet study (and
set on the pessimistic side of it, so the product is judged against more noise than it will meet):

- sporadic corrected (single-bit) ECC errors. ORNL's Titan (18,688 K20X GPUs; Tiwari et al., "Understanding
  GPU Errors on Large-scale HPC Systems", HPCA 2015) logged ~120,000 SBEs in ~22 months, about 0.01 per
  GPU-day on average and concentrated on a few cards; NCSA Delta (Cui et al., "Characterizing GPU
  Resilience and Impact on AI/HPC Systems", 2025, 11.7 million GPU-hours) found H100 memory errors 3.2x
  more frequent per GPU than A100's. Here each GPU gets its own rate from a log-normal with a median of
  ``sbe_median_per_day`` (Hopper SKUs times ``hopper_memory_factor``): many GPUs see a few a day, a
  few see tens - the "chatty card" tail Titan reported;
- rare PCIe replays in small bursts (a replay is a link-level retry the hardware recovers from);
- application Xids from users' programs: Meta's Llama 3 report (Dubey et al., "The Llama 3 Herd of
  Models", 2024, section 3.3.4: 419 unexpected interruptions in 54 days on 16,384 H100 GPUs) counts 54
  software bugs and 7 NCCL watchdog timeouts among them; multi-tenant clusters see far more user faults
  (Kokolis et al., "Revisiting Reliability in Large-Scale Machine Learning Research Clusters", 2024),
  so single-GPU user faults and whole-job crashes (application Xids on every GPU of the job, pods
  crash-looping) are drawn per node and per job at several times Llama 3's rate;
- NCCL timeouts on every node of a job;
- thermal excursions: one GPU over the temperature threshold, throttling, for one scrape;
- restarts (driver reload or reboot, Llama 3's unplanned host maintenance was 32 in 54 days on 2,048
  nodes): the node's agent is silent for a short while and its volatile counters start again at zero.

Nothing here is a fault: no labels, and every event is something the product must not act on alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.simulator.faults.base import Timed, event, kernel_xid, workload, xid
from sim.simulator.fleet import GPUS_PER_NODE, Fleet

DAY_S = 86_400.0


@dataclass(frozen=True)
class NoiseRates:
    """Per-day rates of the background events (see the module docstring for their sources)."""

    sbe_median_per_day: float = 0.5
    sbe_sigma: float = 1.0
    hopper_memory_factor: float = 3.2
    pcie_bursts_per_gpu_day: float = 0.05
    user_xid_per_node_day: float = 0.05
    job_crash_per_job_day: float = 0.1
    nccl_timeout_per_job_day: float = 0.05
    thermal_blip_per_node_day: float = 0.5
    restart_per_node_day: float = 0.01
    restart_silence_s: int = 90


APP_XIDS = (
    (13, "Graphics SM Warp Exception on (GPC 1, TPC 0, SM 0): Out Of Range Address"),
    (31, "Ch 00000010, MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f3c_1000."),
    (43, "Ch 00000018, errorString CTX SWITCH TIMEOUT, Info 0x3c03f"),
)


class FleetNoise:
    """Per-tick draws of the background events; counters live here so restarts can zero them."""

    def __init__(self, fleet: Fleet, rng: np.random.Generator, tick_s: int, rates: NoiseRates) -> None:
        self.fleet, self.rng, self.tick_s, self.rates = fleet, rng, tick_s, rates
        n = len(fleet.nodes)
        hopper = np.array([n.sku.name.startswith(("H100", "H200")) for n in fleet.nodes])[:, None]
        median = rates.sbe_median_per_day * np.where(hopper, rates.hopper_memory_factor, 1.0)
        per_day = median * np.exp(rng.normal(0.0, rates.sbe_sigma, (n, GPUS_PER_NODE)))
        self.sbe_lam = per_day * tick_s / DAY_S
        self.sbe = np.zeros((n, GPUS_PER_NODE), dtype=np.int64)
        self.pcie = np.zeros((n, GPUS_PER_NODE), dtype=np.int64)
        self.jobs = sorted({nd.job for nd in fleet.nodes if nd.workload == "training"})
        self.job_nodes = {j: [nd for nd in fleet.nodes if nd.job == j] for j in self.jobs}
        self.silent_until = np.zeros(n)
        self.hot: dict[int, tuple[int, int]] = {}
        """node index → (GPU, temperature) of this tick's thermal blips: one scrape over the threshold."""
        self.later: list[Timed] = []
        """Events drawn for a later tick (a crash's crash loops), released in their own tick."""

    def p(self, per_day: float) -> float:
        return per_day * self.tick_s / DAY_S

    def step(self, t0: int) -> list[Timed]:
        """Advance the counters one tick; the tick's discrete background events."""
        rng, r = self.rng, self.rates
        n = len(self.fleet.nodes)
        self.sbe += rng.poisson(self.sbe_lam)
        burst = rng.random((n, GPUS_PER_NODE)) < self.p(r.pcie_bursts_per_gpu_day)
        if burst.any():
            self.pcie += burst * rng.integers(1, 5, (n, GPUS_PER_NODE))
        draw = rng.random((n, 3))
        out: list[Timed] = []
        self.hot = {}
        for i in np.flatnonzero(draw[:, 0] < self.p(r.thermal_blip_per_node_day)).tolist():
            self.hot[i] = (int(rng.integers(0, GPUS_PER_NODE)), int(rng.integers(89, 94)))
        for i in np.flatnonzero(draw[:, 1] < self.p(r.user_xid_per_node_day)).tolist():
            node = self.fleet.nodes[i]
            g = int(rng.integers(0, GPUS_PER_NODE))
            code, text = APP_XIDS[int(rng.integers(0, len(APP_XIDS)))]
            pid = int(rng.integers(1000, 65000))
            t = t0 + int(rng.integers(0, self.tick_s))
            out.append(xid(t, node, g, code, text, pid, job=node.job))
            out.append(kernel_xid(t, node, g, code, text, pid, "python3"))
        for i in np.flatnonzero(draw[:, 2] < self.p(r.restart_per_node_day)).tolist():
            self.silent_until[i] = t0 + r.restart_silence_s
            self.sbe[i] = 0
            self.pcie[i] = 0
            node = self.fleet.nodes[i]
            line = "Linux version 5.15.0-1063-nvidia (buildd@lcy02-amd64-012) #64-Ubuntu SMP"
            out.append(event(t0 + r.restart_silence_s, "node.kernel", "kmsg", node.name, {"line": line}))
        jd = rng.random((len(self.jobs), 2))
        for j, job in enumerate(self.jobs):
            if jd[j, 0] < self.p(r.job_crash_per_job_day):
                self.later += self._job_crash(job, t0)
            if jd[j, 1] < self.p(r.nccl_timeout_per_job_day):
                for node in self.job_nodes[job]:
                    gpus = list(range(GPUS_PER_NODE))
                    out.append(workload(t0 + 3, node, "nccl_timeout", job, gpus, 1800.0))
        if self.later:
            t1 = t0 + self.tick_s
            out += [e for e in self.later if e[0] < t1]
            self.later = [e for e in self.later if e[0] >= t1]
        return out

    def _job_crash(self, job: str, t0: int) -> list[Timed]:
        """A user's job dies: an application Xid on every GPU of each of its nodes within seconds, then
        its pods crash-loop for ten minutes."""
        code, text = APP_XIDS[int(self.rng.integers(0, 2))]  # 13 or 31: NVIDIA blames the program
        out: list[Timed] = []
        for node in self.job_nodes[job]:
            t = t0 + int(self.rng.integers(0, 30))
            pid = int(self.rng.integers(1000, 65000))
            for g in range(GPUS_PER_NODE):
                out.append(xid(t, node, g, code, text, pid, job=job))
            for k in range(5):
                out.append(workload(t + 60 + 120 * k, node, "crashloop", job, list(range(GPUS_PER_NODE))))
        return out

    def silent(self, i: int, t: int) -> bool:
        """The node is restarting: no samples or heartbeats."""
        return bool(t < self.silent_until[i])
