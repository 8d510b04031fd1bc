"""Faults of one GPU or one chassis: fallen off the bus, DBE with row-remap failure, rising SBE,
thermal throttling from a failing fan, NVLink CRC errors, and a repeat offender.

Every one of them shows up the way the hardware reports it: an Xid from NVML, the matching NVRM
kernel line naming the GPU's PCI address, changed counters in gpu.sample, and the job's symptom.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.vocab import FailureClass
from sim.simulator.faults.base import Fault, Gpus, Timed, kernel_xid, workload, xid
from sim.simulator.faults.scripted import Scripted, set_health
from sim.simulator.faults.spec import Context, Duration, FaultSpec
from sim.simulator.fleet import GPUS_PER_NODE, Node
from sim.simulator.labels import Label

GpuIndex = Annotated[int, Field(ge=0, lt=GPUS_PER_NODE)]


def proc_name(node: Node) -> str:
    return "python3" if node.workload == "training" else "tritonserver"


class GpuFault(Scripted):
    """A scripted fault on one GPU that carries its label."""

    def __init__(self, node: Node, gpu: int, script: list[Timed], start: int, end: int | None, label: Label):
        super().__init__([node], script, start, end)
        self.gpu = gpu
        self._labels = [label]

    def labels(self) -> list[Label]:
        return self._labels


class GpuSpec(FaultSpec):
    gpu: GpuIndex | None = None

    def gpu_for(self, ctx: Context, node: Node) -> int:
        return self.gpu if self.gpu is not None else ctx.pick(0, GPUS_PER_NODE - 1, node.name, "gpu")


# --- Xid 79 -----------------------------------------------------------------------------------


class _OffTheBus(GpuFault):
    def apply(self, node: Node, t: int, gpus: Gpus) -> None:
        gpus[self.gpu] = {"index": self.gpu, "temp_c": None, "power_w": None, "util": None}


class Xid79Spec(GpuSpec):
    """The GPU drops off PCIe: NVML cannot read it, the job crashes. Decisive; a reset does not help."""

    kind: Literal["xid79"]
    duration: Duration | None = "3h"

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t = self.gpu_for(ctx, node), ctx.offset(self.at) + ctx.pick(0, 600, node.name)
            end = ctx.until(t, self.duration)
            pid = ctx.pick(1000, 65000, node.name, "pid")
            text = "GPU has fallen off the bus."
            script = [
                xid(t, node, g, 79, text, pid),
                kernel_xid(t, node, g, 79, text, pid, proc_name(node)),
                workload(t + 20, node, "crashloop", node.job, [g]),
            ]
            label = ctx.label(
                node, g, FailureClass.GPU_HARDWARE, t, end, "fault", "quarantine", decisive=True,
                repair="reboot",
            )  # fmt: skip
            out.append(_OffTheBus(node, g, script, t, end, label))
        return out


# --- DBE + row remap --------------------------------------------------------------------------


class _Dbe(GpuFault):
    remap_failure_at: int | None = None

    def apply(self, node: Node, t: int, gpus: Gpus) -> None:
        failed = self.remap_failure_at is not None and t >= self.remap_failure_at
        gpus[self.gpu]["dbe_volatile"] = 2 if failed else 1
        set_health(gpus[self.gpu], row_remap_pending=not failed, row_remap_failure=failed)


def _dbe_script(node: Node, g: int, t: int, pid: int, fail_at: int | None) -> list[Timed]:
    text = "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer."
    script = [
        xid(t, node, g, 48, text, pid),
        kernel_xid(t, node, g, 48, text, pid, proc_name(node)),
        xid(t + 2, node, g, 63, "Row remapping event: a row is pending remap; reset the GPU to apply."),
        workload(t + 30, node, "crashloop", node.job, [g]),
    ]
    if fail_at is not None:
        fail_text = "Row remapper failure: no spare rows left in the bank."
        script += [
            xid(fail_at, node, g, 64, fail_text),
            kernel_xid(fail_at, node, g, 64, fail_text, None, ""),
        ]
    return script


class DbeSpec(GpuSpec):
    """A double-bit ECC error; with ``remap_failure`` the row remapper then fails (the GPU needs RMA)."""

    kind: Literal["dbe_row_remap"]
    duration: Duration | None = "3h"
    remap_failure: bool = True
    failure_after: Duration = "5m"

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t = self.gpu_for(ctx, node), ctx.offset(self.at) + ctx.pick(0, 600, node.name)
            end = ctx.until(t, self.duration)
            fail_at = t + ctx.seconds(self.failure_after) if self.remap_failure else None
            script = _dbe_script(node, g, t, ctx.pick(1000, 65000, node.name, "pid"), fail_at)
            repair = "rma" if self.remap_failure else "gpu_reset"
            label = ctx.label(
                node, g, FailureClass.GPU_MEMORY, t, end, "fault", "quarantine", decisive=True, repair=repair
            )
            fault = _Dbe(node, g, script, t, end, label)
            fault.remap_failure_at = fail_at
            out.append(fault)
        return out


class RepeatOffenderSpec(GpuSpec):
    """The same GPU throws a DBE (row remap pending) again ``gap`` after the first one was repaired."""

    kind: Literal["repeat_offender"]
    duration: Duration | None = "1h"
    gap: Duration = "3h"

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t1 = self.gpu_for(ctx, node), ctx.offset(self.at)
            d = ctx.seconds(self.duration or "1h")
            t2 = t1 + d + ctx.seconds(self.gap)
            for n, t in enumerate((t1, t2)):
                if t >= ctx.end:
                    continue
                end = ctx.until(t, self.duration)
                script = _dbe_script(node, g, t, ctx.pick(1000, 65000, node.name, n), None)
                detail = "first occurrence" if n == 0 else "repeat on the same GPU after repair"
                label = ctx.label(
                    node,
                    g,
                    FailureClass.GPU_MEMORY,
                    t,
                    end,
                    "fault",
                    "quarantine",
                    decisive=True,
                    repair="gpu_reset",
                    persistent=False,
                    detail=detail,
                    suffix=f":{n}",
                )
                out.append(_Dbe(node, g, script, t, end, label))
        return out


# --- slowly rising SBE ------------------------------------------------------------------------


class _RisingSbe(GpuFault):
    ramp: int = 3600
    peak: int = 5000

    def apply(self, node: Node, t: int, gpus: Gpus) -> None:
        x = min(1.0, (t - self.start) / self.ramp)
        gpus[self.gpu]["sbe_volatile"] = gpus[self.gpu].get("sbe_volatile", 0) + 1 + int(self.peak * x * x)
        if x >= 0.8:
            set_health(gpus[self.gpu], row_remap_pending=True)


class SbeRisingSpec(GpuSpec):
    """Correctable errors that accelerate over hours (degrading HBM); row remap pending at 80%."""

    kind: Literal["sbe_rising"]
    duration: Duration | None = "8h"
    ramp: Duration = "4h"
    peak: Annotated[int, Field(ge=10)] = 5000

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t = self.gpu_for(ctx, node), ctx.offset(self.at)
            end, ramp = ctx.until(t, self.duration), ctx.seconds(self.ramp)
            t_remap = t + int(ramp * 0.8)
            text = "Row remapping event: correctable errors reached the remap threshold."
            script = [xid(t_remap, node, g, 63, text)] if t_remap < ctx.end else []
            label = ctx.label(node, g, FailureClass.GPU_MEMORY, t, end, "fault", "quarantine", repair="rma")
            sbe = _RisingSbe(node, g, script, t, end, label)
            sbe.ramp, sbe.peak = ramp, self.peak
            out.append(sbe)
        return out


# --- thermal throttling from a failing fan ----------------------------------------------------


class _HotChassis(Scripted):
    def __init__(
        self,
        node: Node,
        gpus: list[int],
        script: list[Timed],
        start: int,
        end: int | None,
        ramp: int,
        label: Label,
    ) -> None:
        super().__init__([node], script, start, end)
        self.gpus, self.ramp, self._labels = gpus, ramp, [label]

    def labels(self) -> list[Label]:
        return self._labels

    def apply(self, node: Node, t: int, gpus: Gpus) -> None:
        rise = 45.0 * min(1.0, (t - self.start) / self.ramp)
        for g in self.gpus:
            r = gpus[g]
            temp = min(97, int(r["temp_c"] + rise))
            r["temp_c"] = temp
            if temp >= 87:
                # NVML clock-event reason names as the collectors report them (agents/collect).
                r["throttle_reasons"] = (
                    ["hw_slowdown", "hw_thermal", "sw_thermal"] if temp >= 92 else ["sw_thermal"]
                )
                r["power_w"] = round(r["power_w"] * 0.7, 1)


class ThermalFanSpec(FaultSpec):
    """A fan on one side of the chassis fails: its GPUs heat up over ``ramp`` and throttle."""

    kind: Literal["thermal_fan"]
    duration: Duration | None = "4h"
    gpus: list[GpuIndex] = [0, 1, 2, 3]
    ramp: Duration = "30m"

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            t = ctx.offset(self.at)
            end, ramp = ctx.until(t, self.duration), ctx.seconds(self.ramp)
            stop = end if end is not None else ctx.end
            slow = [
                workload(s, node, "latency_spike", node.job, list(self.gpus), 1.8)
                for s in range(t + int(ramp * 0.7), stop, 900)
            ]
            label = ctx.label(
                node,
                None,
                FailureClass.THERMAL_POWER,
                t,
                end,
                "fault",
                "quarantine",
                repair="rma",
                detail=f"fan failure cooling GPUs {self.gpus}",
            )
            out.append(_HotChassis(node, list(self.gpus), slow, t, end, ramp, label))
        return out


# --- NVLink CRC errors ------------------------------------------------------------------------


class _CrcErrors(GpuFault):
    per_min: int = 40

    def apply(self, node: Node, t: int, gpus: Gpus) -> None:
        set_health(gpus[self.gpu], nvlink_crc_errors=1 + self.per_min * (t - self.start) // 60)


class NvlinkCrcSpec(GpuSpec):
    """A marginal NVLink: CRC errors climb steadily, Xid 74 every 90 minutes, NCCL slows."""

    kind: Literal["nvlink_crc"]
    duration: Duration | None = "4h"
    per_min: Annotated[int, Field(ge=1)] = 40

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            g, t = self.gpu_for(ctx, node), ctx.offset(self.at)
            end = ctx.until(t, self.duration)
            text = "NVLink: fatal error detected on link 3(0x0, 0x0, 0x0, 0x10000, 0x0, 0x0, 0x0)"
            script: list[Timed] = []
            for s in range(t + 1200, end if end is not None else ctx.end, 5400):
                script += [xid(s, node, g, 74, text), kernel_xid(s, node, g, 74, text, None, "")]
            fabric = FailureClass.NVLINK_FABRIC
            label = ctx.label(node, g, fabric, t, end, "fault", "quarantine", repair="rma")
            crc = _CrcErrors(node, g, script, t, end, label)
            crc.per_min = self.per_min
            out.append(crc)
        return out
