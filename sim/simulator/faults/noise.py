"""Pure noise: a single temperature spike, a single correctable ECC error, a single application Xid.
Each is real telemetry a fleet sees every day; none of them may ever cause an action.
"""

from __future__ import annotations

from typing import Literal

from schemas.vocab import FailureClass
from sim.simulator.faults.base import Fault, Gpus, kernel_xid, xid
from sim.simulator.faults.gpu import GpuFault, GpuSpec, proc_name
from sim.simulator.faults.spec import Context
from sim.simulator.fleet import Node


class _Spike(GpuFault):
    peak: int = 91

    def patch(self, node: Node, t: int, gpus: Gpus) -> None:
        # Exactly one scrape: the first one at or after the spike time.
        if self.start <= t < self.start + 15:
            gpus[self.gpu]["temp_c"] = self.peak


class _OneSbe(GpuFault):
    def apply(self, node: Node, t: int, gpus: Gpus) -> None:
        # A volatile counter keeps its value until the next reset: one more than the background's.
        gpus[self.gpu]["sbe_volatile"] = gpus[self.gpu].get("sbe_volatile", 0) + 1


class TempSpikeSpec(GpuSpec):
    kind: Literal["temp_spike"]
    temp_c: int = 91

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t = self.gpu_for(ctx, node), ctx.offset(self.at) + ctx.pick(0, 600, node.name)
            hot = FailureClass.THERMAL_POWER
            label = ctx.label(node, g, hot, t, t + 15, "noise", "none", persistent=False)
            spike = _Spike(node, g, [], t, t + 15, label)
            spike.peak = self.temp_c
            out.append(spike)
        return out


class SingleSbeSpec(GpuSpec):
    kind: Literal["single_sbe"]

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t = self.gpu_for(ctx, node), ctx.offset(self.at) + ctx.pick(0, 600, node.name)
            label = ctx.label(node, g, FailureClass.GPU_MEMORY, t, t, "noise", "none", persistent=False)
            out.append(_OneSbe(node, g, [], t, None, label))
        return out


class AppXidSpec(GpuSpec):
    """One user program faults (Xid 13 by default): the job's bug, not the GPU's."""

    kind: Literal["app_xid"]
    xid: Literal[13, 31, 43] = 13

    def build(self, ctx: Context) -> list[Fault]:
        texts = {
            13: "Graphics SM Warp Exception on (GPC 0, TPC 3, SM 1): Out Of Range Address",
            31: "Ch 00000010, MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f12_3456.",
            43: "Ch 00000018, errorString CTX SWITCH TIMEOUT, Info 0x3c03f",
        }
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t = self.gpu_for(ctx, node), ctx.offset(self.at) + ctx.pick(0, 600, node.name)
            pid = ctx.pick(1000, 65000, node.name, "pid")
            text = texts[self.xid]
            script = [
                xid(t, node, g, self.xid, text, pid, job=node.job),
                kernel_xid(t, node, g, self.xid, text, pid, proc_name(node)),
            ]
            label = ctx.label(node, g, FailureClass.WORKLOAD_SYMPTOM, t, t, "noise", "none", persistent=False)
            out.append(GpuFault(node, g, script, t, t, label))
        return out
