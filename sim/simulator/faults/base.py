"""The injector interface the engine drives once per 15 s tick, and helpers to build event dicts.

An injector owns its nodes for its active span: it adds events (``events``), rewrites readings in
the node's gpu.sample (``patch``), and silences background channels (``muted``: ``sample``,
``heartbeat``, ``condition``). Times are integer epoch seconds; events are ``(time, dict)`` with the
``id`` filled in later by the engine, in file order, so ids are stable and unique.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sim.simulator.clock import rfc3339
from sim.simulator.fleet import Node
from sim.simulator.labels import Label

Timed = tuple[int, dict[str, Any]]
Gpus = list[dict[str, Any]]

# Channel names the background generator knows how to silence.
SAMPLE, HEARTBEAT, CONDITION = "sample", "heartbeat", "condition"


def event(t: int, etype: str, source: str, node: str | None, data: dict[str, Any]) -> Timed:
    """An envelope dict in wire layout; ``id`` is assigned by the engine when it is written."""
    return t, {"id": "", "type": etype, "source": source, "time": rfc3339(t), "node": node, "data": data}


def pci(node: Node, gpu: int) -> str:
    return node.sku.bus_ids[gpu]


def kernel_xid(t: int, node: Node, gpu: int, xid: int, text: str, pid: int | None, proc: str) -> Timed:
    """The NVRM Xid line as dmesg prints it, naming the GPU by PCI address (with or without pid)."""
    who = f" pid={pid}, name={proc}," if pid is not None else ""
    uptime = 86_400 + (t % 1_000_000)
    line = f"[{uptime}.{(t * 7919) % 1_000_000:06d}] NVRM: Xid (PCI:{pci(node, gpu)}):{xid:3d},{who} {text}"
    return event(t, "node.kernel", "kmsg", node.name, {"line": line})


def xid(t: int, node: Node, gpu: int, code: int, text: str, pid: int | None = None, **extra: Any) -> Timed:
    data: dict[str, Any] = {"gpu": gpu, "xid": code, "pid": pid, "message": text, **extra}
    if pid is None:
        del data["pid"]
    return event(t, "gpu.xid", "nvml", node.name, data)


def workload(
    t: int, node: Node, kind: str, job: str, gpus: list[int] | None = None, value: float | None = None
) -> Timed:
    data: dict[str, Any] = {"kind": kind, "job": job, "pod": f"{job}-{node.index:05d}"}
    if gpus is not None:
        data["gpus"] = gpus
    if value is not None:
        data["value"] = value
    return event(t, "workload.event", "kube-events", node.name, data)


class Fault:
    """Base injector: no events, no patches, no mutes. Subclasses override what they need.

    ``first``/``last`` bound the span in which the engine consults the injector at all (``last`` None:
    until the end), so a fleet of thousands of nodes pays nothing for an injector that is idle.
    """

    first: int = 0
    last: int | None = None
    nodes: tuple[Node, ...] = ()

    def events(self, t0: int, t1: int) -> Iterable[Timed]:
        """Events with ``t0 <= time < t1``."""
        return ()

    def patched(self, t0: int, t1: int) -> Iterable[int]:
        """Indices of nodes whose samples in this tick go through ``patch``."""
        return ()

    def patch(self, node: Node, t: int, gpus: Gpus) -> None:
        """Rewrite readings in place (a GPU dict per index)."""

    def muted(self, t0: int, t1: int) -> Iterable[tuple[str, int]]:
        """(channel, node index) pairs the background must not emit in this tick."""
        return ()

    def labels(self) -> list[Label]:
        return []

    def active(self, t0: int, t1: int) -> bool:
        return self.first < t1 and (self.last is None or t0 <= self.last)


def in_tick(t: int, t0: int, t1: int) -> bool:
    return t0 <= t < t1
