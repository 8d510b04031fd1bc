"""Faults that hit many nodes at once and must become one incident, not N quarantines: NCCL timeouts
behind a failing leaf switch, a driver rollout that breaks a pool, an Xid 45/13 storm from one job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field

from schemas.vocab import FailureClass
from sim.simulator.faults.base import Fault, Timed, event, kernel_xid, workload, xid
from sim.simulator.faults.scripted import Scripted
from sim.simulator.faults.spec import Context, Duration, FaultSpec
from sim.simulator.fleet import GPUS_PER_NODE, Node
from sim.simulator.labels import Label


class _Many(Scripted):
    def __init__(
        self, nodes: list[Node], script: list[Timed], start: int, end: int | None, labels: list[Label]
    ):
        super().__init__(nodes, script, start, end)
        self._labels = labels

    def labels(self) -> list[Label]:
        return self._labels

    def patched(self, t0: int, t1: int) -> Iterable[int]:
        return ()


class LeafNcclSpec(FaultSpec):
    """A leaf switch degrades: every node behind it sees NCCL timeouts within minutes, repeatedly."""

    kind: Literal["leaf_nccl"]
    duration: Duration | None = "2h"
    leaf: str | None = None
    spread: Duration = "5m"
    repeat: Duration = "10m"

    def build(self, ctx: Context) -> list[Fault]:
        leaf, nodes = ctx.alloc.leaf(ctx.key, self.pool, self.leaf)
        t = ctx.offset(self.at)
        end = ctx.until(t, self.duration)
        stop, spread, every = end or ctx.end, ctx.seconds(self.spread), ctx.seconds(self.repeat)
        racks = sorted({n.rack for n in nodes})
        scope: dict[str, str | int | list[str]] = {"leaf": leaf, "racks": racks, "size": len(nodes)}
        script: list[Timed] = []
        labels: list[Label] = []
        for node in nodes:
            first = t + ctx.pick(0, spread, node.name)
            line = "mlx5_core 0000:c1:00.0: mlx5e_tx_timeout_work: TX timeout on queue: 3, SQ: 0x10d"
            script.append(event(first, "node.kernel", "kmsg", node.name, {"line": line}))
            for s in range(first, stop, every):
                script.append(
                    workload(s + 5, node, "nccl_timeout", node.job, list(range(GPUS_PER_NODE)), 1800.0)
                )
            labels.append(
                ctx.label(
                    node,
                    None,
                    FailureClass.NETWORK,
                    first,
                    end,
                    "storm",
                    "incident",
                    scope=scope,
                    persistent=False,
                    detail=f"leaf switch {leaf} degraded",
                )
            )
        return [_Many(nodes, script, t, end, labels)]


class DriverRolloutSpec(FaultSpec):
    """A driver change lands on a whole pool; minutes later its nodes show GSP timeouts and crashloops.

    The change is the cause: the right answer is a rollback, not quarantining the pool's hardware.
    """

    kind: Literal["driver_rollout"]
    pool: str = "infer-a"
    version: str = "560.28.03"
    delay_min: Duration = "3m"
    delay_max: Duration = "12m"
    fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    duration: Duration | None = "3h"
    repeat: Duration = "5m"

    def build(self, ctx: Context) -> list[Fault]:
        nodes = ctx.alloc.whole_pool(ctx.key, self.pool)
        t = ctx.offset(self.at)
        end = ctx.until(t, self.duration)
        data = {"kind": "driver", "version": self.version, "scope": {"pool": self.pool}}
        script = [event(t, "change.event", "deploy-controller", None, data)]
        lo, hi = ctx.seconds(self.delay_min), ctx.seconds(self.delay_max)
        every, stop = ctx.seconds(self.repeat), end or ctx.end
        scope: dict[str, str | int | list[str]] = {
            "pool": self.pool,
            "change": self.version,
            "size": len(nodes),
        }
        labels: list[Label] = []
        for node in nodes:
            if ctx.draw(node.name, "hit") >= self.fraction:
                continue
            first = t + ctx.pick(lo, hi, node.name)
            g = ctx.pick(0, GPUS_PER_NODE - 1, node.name, "gpu")
            text = f"Timeout after 6s of waiting for RPC response from GPU{g} GSP! Expected function 76."
            script += [xid(first, node, g, 119, text), kernel_xid(first, node, g, 119, text, None, "")]
            for s in range(first + 30, stop, every):
                script.append(workload(s, node, "crashloop", node.job, [g]))
            labels.append(
                ctx.label(
                    node,
                    None,
                    FailureClass.CHANGE_REGRESSION,
                    first,
                    end,
                    "change",
                    "rollback",
                    scope=scope,
                    persistent=False,
                    detail=f"driver {self.version}",
                )
            )
        return [_Many(nodes, script, t, end, labels)]


class XidStormSpec(FaultSpec):
    """One job's teardown: Xid 45 on every GPU and Xid 13 on some, over dozens of nodes in many racks,
    within minutes. The job is at fault; its GPUs are fine."""

    kind: Literal["xid_storm"]
    pool: str = "train-a"
    nodes: Annotated[int, Field(ge=2)] = 77
    racks: Annotated[int, Field(ge=1)] = 11
    min_nodes: Annotated[int, Field(ge=2)] = 10
    spread: Duration = "4m"
    job: str = "llm-pretrain-70b"

    def build(self, ctx: Context) -> list[Fault]:
        nodes = ctx.alloc.spread(ctx.key, self.pool, self.nodes, self.racks, self.min_nodes)
        t = ctx.offset(self.at)
        spread = ctx.seconds(self.spread)
        racks = sorted({n.rack for n in nodes})
        scope: dict[str, str | int | list[str]] = {"job": self.job, "racks": racks, "size": len(nodes)}
        script: list[Timed] = []
        labels: list[Label] = []
        xid45 = "Preemptive cleanup, due to previous errors -- most likely multiple cuda apps and a DBE."
        xid13 = "Graphics SM Warp Exception on (GPC 1, TPC 2, SM 0): Out Of Range Address"
        for node in nodes:
            s = t + ctx.pick(0, spread, node.name)
            pid = ctx.pick(1000, 65000, node.name, "pid")
            for g in range(GPUS_PER_NODE):
                if ctx.draw(node.name, g) < 0.25:
                    script += [
                        xid(s, node, g, 13, xid13, pid, job=self.job),
                        kernel_xid(s, node, g, 13, xid13, pid, "python3"),
                    ]
                script += [
                    xid(s + 1, node, g, 45, xid45, pid, job=self.job),
                    kernel_xid(s + 1, node, g, 45, xid45, pid, "python3"),
                ]
            script.append(workload(s + 3, node, "crashloop", self.job, list(range(GPUS_PER_NODE))))
            labels.append(
                ctx.label(
                    node,
                    None,
                    FailureClass.WORKLOAD_SYMPTOM,
                    s,
                    s + 3,
                    "storm",
                    "incident",
                    scope=scope,
                    persistent=False,
                    detail=f"teardown of job {self.job}",
                )
            )
        return [_Many(nodes, script, t, t + spread + 3, labels)]
