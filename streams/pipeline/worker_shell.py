"""One worker's two stages behind one lock, and the rebalance rules that keep their input honest.

A worker runs the node stage for the event partitions it is assigned and the guard when it holds the
proposals partition. :class:`WorkerShell` is what Faust's agents, timers and rebalance signals call
(``streams.pipeline.app`` wires them): it serialises every stage call under one lock (a checkpoint's write →
flush → send → acknowledge is never interleaved with input), and it drops input taken from the
stream before a rebalance, which Faust re-delivers from the committed offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from streams.pipeline.guard_shell import GuardShell
from streams.pipeline.heap import HeapKeeper
from streams.pipeline.node_shell import NodeShell
from streams.pipeline.ports import Clock

_READY_POLL_S = 0.01


class WorkerShell:
    """Dispatches the worker's lifecycle to :class:`NodeShell` and :class:`GuardShell`."""

    def __init__(
        self,
        node: NodeShell,
        guard: GuardShell,
        ready: Callable[[], bool],
        assignment: Callable[[], Iterable[Any]],
        heap: HeapKeeper,
        clock: Clock,
    ) -> None:
        """``ready``: recovery is done (tables restored, partitions seeked back to their committed
        offsets); ``assignment``: the consumer's topic-partitions now."""
        self.node = node
        self.guard = guard
        self.ready = ready
        self.assignment = assignment
        self.heap = heap
        self.clock = clock
        self.lock = asyncio.Lock()
        self.mine: set[Any] = set()
        """This worker's assignment, kept from the rebalance signals: asking the consumer builds a new
        set of every assigned partition, which cost a third of the node stage's time when done per
        event."""
        self.rebalances = 0
        """Revocations so far: input taken from the stream before the latest one is stale."""

    async def revoked(self, revoked: set[Any]) -> None:
        """After a rebalance Faust re-reads every partition from its committed offset, so what this
        worker applied but did not checkpoint is dropped here and rebuilt from the table."""
        self.rebalances += 1
        async with self.lock:
            self.mine.difference_update(revoked)
            for tp in revoked:
                if tp.topic == self.node.events_topic:
                    self.node.revoked(tp.partition)
                elif tp.topic == self.guard.proposals_topic:
                    self.guard.revoked()

    def assigned(self) -> None:
        self.mine.clear()
        self.mine.update(self.assignment())

    async def node_input(self, event: Any, queue_empty: Callable[[], bool]) -> None:
        """One record of the node stage's stream (events and decisions)."""
        taken = self.rebalances
        while not self.ready() and self.rebalances == taken:
            # Faust resumes the flow (already seeked to the committed offsets) a moment before it
            # reports the rebalance done; input delivered in between is never delivered again, so
            # wait for it, never drop it (dropping lost events and let restored nodes act on a gap).
            await asyncio.sleep(_READY_POLL_S)
        wall = self.clock()
        async with self.lock:
            if self.rebalances != taken or event.message.tp not in self.mine:
                return  # taken before a rebalance: Faust re-reads it from the committed offset
            await self.node.input(event, wall, queue_empty)

    async def node_timer(self) -> None:
        if not self.ready():
            return
        self.heap.tick(self.clock())
        async with self.lock:
            await self.node.timer(self._event_partitions)

    def _event_partitions(self) -> set[int]:
        events = self.node.events_topic
        return {tp.partition for tp in self.assignment() if tp.topic == events}

    async def guard_input(self, event: Any) -> None:
        """One record of the guard's stream (proposals and control)."""
        async with self.lock:
            await self.guard.input(event)

    async def guard_timer(self) -> None:
        if not self.ready() or not self.guard.on:
            return
        async with self.lock:
            await self.guard.timer()
