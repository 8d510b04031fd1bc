"""Faults of a whole node that are not GPU telemetry: a silent agent, a flapping kubelet, and a
tenant's issue report on release followed by the repair tenant's status.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from schemas.vocab import FailureClass
from sim.simulator.faults.base import CONDITION, HEARTBEAT, SAMPLE, Fault, Timed, event
from sim.simulator.faults.scripted import Scripted
from sim.simulator.faults.spec import Context, Duration, FaultSpec
from sim.simulator.fleet import Node
from sim.simulator.labels import Label


class _NodeFault(Scripted):
    channels: tuple[str, ...] = ()

    def __init__(self, node: Node, script: list[Timed], start: int, end: int | None, labels: list[Label]):
        super().__init__([node], script, start, end)
        self._labels = labels

    def labels(self) -> list[Label]:
        return self._labels

    def muted(self, t0: int, t1: int) -> Iterable[tuple[str, int]]:
        if not self.channels or not self.patching(t0, t1):
            return ()
        return [(c, self.nodes[0].index) for c in self.channels]


class _Silent(_NodeFault):
    channels = (SAMPLE, HEARTBEAT)


class _Flapping(_NodeFault):
    channels = (CONDITION,)


class SilentAgentSpec(FaultSpec):
    """The node agent stops: no samples, no heartbeats, while kubelet still says Ready. Not a node fault."""

    kind: Literal["silent_agent"]
    duration: Duration | None = "90m"

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            t = ctx.offset(self.at)
            end = ctx.until(t, self.duration)
            silent = FailureClass.MONITORING
            label = ctx.label(node, None, silent, t, end, "silent", "monitoring", repair=None)
            out.append(_Silent(node, [], t, end, [label]))
        return out


def _ready(t: int, node: Node, status: str) -> Timed:
    if status == "True":
        reason, message = "KubeletReady", "kubelet is posting ready status"
    else:
        reason, message = "KubeletNotReady", "PLEG is not healthy: pleg was last seen active 3m0s ago"
    data = {"condition": "Ready", "status": status, "reason": reason, "message": message}
    return event(t, "node.condition", "kubelet", node.name, data)


def _hung_runtime(t: int, node: Node) -> Timed:
    """What a sick PLEG looks like in dmesg: the container runtime stuck in the kernel (hung_task.c)."""
    pid = 1000 + t % 30_000
    line = f"[{86_400 + t % 1_000_000}.000000] INFO: task containerd:{pid} blocked for more than 120 seconds."
    return event(t, "node.kernel", "kmsg", node.name, {"line": line})


class FlappingSpec(FaultSpec):
    """Ready oscillates True/False every few minutes (a sick kubelet/PLEG: containerd hangs in the
    kernel, so each NotReady comes with a hung-task line), then settles Ready."""

    kind: Literal["flapping"]
    duration: Duration | None = "1h"
    period: Duration = "4m"

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        for node in ctx.alloc.nodes(ctx.key, self.count, self.pool):
            t = ctx.offset(self.at)
            end = ctx.until(t, self.duration)
            stop, half = end if end is not None else ctx.end, ctx.seconds(self.period) // 2
            script, s, down = [], t, True
            while s < stop:
                if down:
                    script.append(_hung_runtime(s, node))
                script.append(_ready(s, node, "False" if down else "True"))
                s += half + ctx.pick(0, 30, node.name, s)
                down = not down
            if end is not None:
                script.append(_ready(end, node, "True"))
            label = ctx.label(
                node,
                None,
                FailureClass.NODE_OS,
                t,
                end,
                "fault",
                "quarantine",
                repair="reboot",
                persistent=False,
                detail="Ready flapping",
            )
            out.append(_Flapping(node, script, t, end, [label]))
        return out


RepairOutcome = Literal["Completed", "Failed", "InProgress", "missing"]


class TenantReportSpec(FaultSpec):
    """A tenant releases an instance with an issue report; the repair tenant later reports an outcome.

    One node per outcome; ``missing`` sends repair.status without ``repair_status`` (handled as failed).
    """

    kind: Literal["tenant_report"]
    outcomes: list[RepairOutcome] = ["Completed", "Failed", "InProgress", "missing"]
    repair_after: Duration = "2h"

    def build(self, ctx: Context) -> list[Fault]:
        out: list[Fault] = []
        nodes = ctx.alloc.nodes(ctx.key, len(self.outcomes), self.pool)
        for node, outcome in zip(nodes, self.outcomes, strict=True):
            t = ctx.offset(self.at) + ctx.pick(0, 900, node.name)
            instance = f"i-{ctx.pick(0, 16**12, node.name):012x}"
            report = {
                "instance_id": instance,
                "category": "HARDWARE",
                "summary": "training job hangs at NCCL init on this instance",
                "details": "Repro on two runs; other instances of the job are fine.",
            }
            script = [event(t, "tenant.report", "tenant-api", node.name, report)]
            t_rep = t + ctx.seconds(self.repair_after)
            end: int | None = None
            if t_rep < ctx.end:
                status: dict[str, object] = {"instance_id": instance, "repair_details": f"outcome {outcome}"}
                if outcome != "missing":
                    status["repair_status"] = outcome
                if outcome == "InProgress":
                    status["repair_eta"] = datetime.fromtimestamp(t_rep + 14_400, UTC).isoformat()
                script.append(event(t_rep, "repair.status", "repair-tenant", node.name, status))
                end = t_rep if outcome == "Completed" else None
            label = ctx.label(
                node,
                None,
                FailureClass.TENANT_REPORT,
                t,
                end,
                "fault",
                "quarantine",
                decisive=True,
                repair="reboot",
                persistent=False,
                detail=f"repair outcome {outcome}",
            )
            out.append(_NodeFault(node, script, t, end, [label]))
        return out
