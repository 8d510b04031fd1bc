"""An injector whose extra events are known up front (a script), plus a patch span.

Most faults are a handful of events at fixed offsets and a change to readings between ``start`` and
``end``; computing the script once keeps the per-tick cost to a pointer move.
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.simulator.faults.base import Fault, Gpus, Timed
from sim.simulator.fleet import Node


class Scripted(Fault):
    def __init__(self, nodes: list[Node], script: list[Timed], start: int, end: int | None) -> None:
        self.nodes = tuple(nodes)
        self.script = sorted(script, key=lambda te: te[0])
        self.start = start
        self.end = end
        self._next = 0
        self.first = min([start, *(t for t, _ in self.script)])
        last = max((t for t, _ in self.script), default=start)
        self.last = None if end is None else max(end, last)

    def events(self, t0: int, t1: int) -> Iterable[Timed]:
        out: list[Timed] = []
        while self._next < len(self.script) and self.script[self._next][0] < t1:
            out.append(self.script[self._next])
            self._next += 1
        return out

    def patching(self, t0: int, t1: int) -> bool:
        return self.start < t1 and (self.end is None or t0 < self.end)

    def patched(self, t0: int, t1: int) -> Iterable[int]:
        return [n.index for n in self.nodes] if self.patching(t0, t1) else ()

    def patch(self, node: Node, t: int, gpus: Gpus) -> None:
        if t >= self.start and (self.end is None or t < self.end):
            self.apply(node, t, gpus)

    def apply(self, node: Node, t: int, gpus: Gpus) -> None:
        """Readings while the fault is on; the default changes nothing (event-only faults)."""


def set_health(gpu: dict[str, object], **fields: object) -> None:
    """Fill the health fields a sample carries only every minute, then override some of them."""
    gpu.setdefault("row_remap_pending", False)
    gpu.setdefault("row_remap_failure", False)
    gpu.setdefault("pcie_replay", 0)
    gpu.setdefault("nvlink_crc_errors", 0)
    gpu.update(fields)
