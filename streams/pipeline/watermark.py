"""Ordering of the guard's input: release proposals in (time, node, seq) order behind a watermark.

Offline replay feeds the guard in recording order, which the simulator writes sorted by (time, node).
In streaming, proposals from the node stage's partitions reach the guard's single partition
interleaved by whichever worker was faster. Each node-stage partition therefore announces its
progress as an order key ("every item of mine ordered before K has been sent"); the watermark is the
minimum over all partitions, and an item is released once its key is below it, so the guard sees the
same order as offline replay even when proposals compete for one rack's or pool's slot. Within one
event time, offline replay runs every node's tick before any event stamped that time, so a tick's key
carries a prefix that sorts before node ids (``streams.pipeline.node_stage.TICK``). A node that awaits a
decision caps its partition's progress below the next key it could send, because offline replay
applies a decision before the node's later input: for a pending tick, that is after every tick of
the time step, so many nodes ticking at once reach the guard together.

The wait is bounded: an item held longer than ``max_wait_s`` (wall clock: a dead worker, a partition
nobody consumes) is released anyway, together with every item ordered before it. That trades exact
offline order for liveness only when a partition stalls for longer than the bound.

>>> w = Watermark(partitions=2, max_wait_s=30.0)
>>> w.push((5.0, "n2", 0), "p-b", "B", wall=0.0)
True
>>> w.mark(0, (10.0, "", 0)); w.release(wall=0.1)
[]
>>> w.push((4.0, "n1", 0), "p-a", "A", wall=0.2)
True
>>> w.mark(1, (6.0, "", 0)); w.release(wall=0.3)
['A', 'B']
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

OrderKey = tuple[float, str, int]
"""(event time, node, per-node sequence number): offline replay's order of guard input. A tick's node
carries a prefix that sorts before node ids (``streams.pipeline.node_stage.TICK``)."""

_BOTTOM: OrderKey = (float("-inf"), "", 0)


@dataclass(order=True)
class _Held(Generic[T]):
    key: OrderKey
    item_id: str
    wall: float = field(compare=False)
    payload: T = field(compare=False)


class Watermark(Generic[T]):
    """Holds guard input until every partition has passed its time, or ``max_wait_s`` has elapsed."""

    def __init__(self, partitions: int, max_wait_s: float) -> None:
        self.partitions = partitions
        self.max_wait_s = max_wait_s
        self.progress: dict[int, OrderKey] = {}
        self._heap: list[_Held[T]] = []
        self._ids: set[str] = set()

    def mark(self, partition: int, bound: OrderKey) -> None:
        """Partition ``partition`` has sent every item ordered before ``bound``; progress never goes back."""
        if bound > self.progress.get(partition, _BOTTOM):
            self.progress[partition] = bound

    @property
    def low(self) -> OrderKey:
        return min((self.progress.get(p, _BOTTOM) for p in range(self.partitions)), default=_BOTTOM)

    def push(self, key: OrderKey, item_id: str, payload: T, wall: float) -> bool:
        """Hold an item; False when an item with the same id is already held (a re-sent duplicate)."""
        if item_id in self._ids:
            return False
        self._ids.add(item_id)
        heapq.heappush(self._heap, _Held(key, item_id, wall, payload))
        return True

    def release(self, wall: float) -> list[T]:
        """Items now safe to hand to the guard, in order."""
        low = self.low
        overdue = max((h.key for h in self._heap if wall - h.wall >= self.max_wait_s), default=None)
        out: list[T] = []
        while self._heap and (
            self._heap[0].key < low or (overdue is not None and self._heap[0].key <= overdue)
        ):
            held = heapq.heappop(self._heap)
            self._ids.discard(held.item_id)
            out.append(held.payload)
        return out

    def __len__(self) -> int:
        return len(self._heap)

    def to_dict(self) -> dict[str, Any]:
        """Only progress is persisted: held items are not acked, so the broker re-delivers them."""
        return {"progress": {str(p): list(k) for p, k in self.progress.items()}}

    def restore(self, d: dict[str, Any]) -> None:
        for p, (t, node, seq) in d.get("progress", {}).items():
            self.mark(int(p), (float(t), str(node), int(seq)))
