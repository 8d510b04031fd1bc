"""The node stage's streaming runtime: when to apply, write, send and acknowledge, over ports.

:class:`streams.pipeline.node_stage.NodeStage` (no I/O) turns input bytes into outputs and checkpoint values;
:class:`NodeShell` moves them through :class:`streams.pipeline.ports.Ports` in the order their durability
rules need, per partition:

* input is applied as it arrives and held (unacknowledged) until its partition's checkpoint;
* a proposing node's state is written and flushed before its guard item leaves (:meth:`send_pending`);
* a checkpoint writes the partition's records (its own record alone in the last batch), flushes,
  awaits every send since the last one, and only then acknowledges the input it covers.

Lifecycle: :meth:`assigned` (restore a partition from the table, re-send what a crash left unsent),
:meth:`input` (one delivered record), :meth:`checkpoint`, :meth:`timer` (progress marks and due
checkpoints), :meth:`revoked` (drop what was not checkpointed; the next owner re-reads it).
:class:`streams.pipeline.worker_shell.WorkerShell` serialises the calls (one lock for the worker) and filters
input taken before a rebalance; everything here is single-threaded and testable through in-memory
ports.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from schemas.recording import dumps
from schemas.topics import TOPIC_BY_NAME, Topic
from streams import metrics as stage_metrics
from streams.pipeline.guard_stage import progress_body
from streams.pipeline.node_stage import GuardItem, NodeStage, Outputs
from streams.pipeline.ports import Ports, Writes
from streams.pipeline.watermark import OrderKey

INPUT_ROLES = {"events": Topic.EVENTS, "decisions": Topic.DECISIONS}
"""The node stage's input topics by the role names its checkpoint keeps their offsets under."""
PENDING_MAX = 256
"""Guard items held back while input is queued before their nodes' state is written and they leave."""


class NodeShell:
    """One worker's node stage: the partitions of ``breakfix.events``/``decisions`` it holds."""

    def __init__(self, stage: NodeStage, ports: Ports, topics: dict[str, str], group: str) -> None:
        """``topics``: catalogue name → Kafka topic name (the deployment's prefix applied);
        ``group``: the consumer group, the label of the lag metric."""
        self.stage = stage
        self.ports = ports
        self.topics = topics
        self.group = group
        self.events_topic = topics[Topic.EVENTS]
        self.held: dict[int, list[Any]] = defaultdict(list)
        """Input of a partition applied since its last checkpoint: acknowledged by the next one."""
        self.pending: dict[int, list[GuardItem]] = {}
        """Guard items whose nodes' state is not written yet, per partition: sent by
        :meth:`send_pending` (input queue drained, PENDING_MAX reached, or the timer) or by the
        partition's checkpoint."""
        self.sent_futs: dict[int, list[Awaitable[Any]]] = defaultdict(list)
        """Sends of a partition since its last checkpoint, awaited before that checkpoint acknowledges."""
        self.sent_progress: dict[int, OrderKey] = {}
        self.counted = 0
        """Events read since the last timer, which adds them to the events counter (a Prometheus
        counter takes a lock per increment: once per tick instead of once per event)."""
        self.events_in = stage_metrics.EVENTS.labels(stage="node")

    # --- lifecycle ----------------------------------------------------------------------------

    async def assigned(self, p: int) -> None:
        """Take partition ``p``: restore its nodes from the table, learn where its input starts when
        it has no checkpoint, and re-send the guard items its nodes had not had answered."""
        resend = self.stage.assign(p, list(self.ports.table.items()), self.ports.clock())
        stage_metrics.STATE_REFUSED.labels(stage="node").inc(self.stage.partitions[p].refused)
        roles = self.stage.unstarted(p, list(INPUT_ROLES))
        if roles:
            tps = {role: (self.topics[INPUT_ROLES[role]], p) for role in roles}
            for role, offset in (await self.ports.log.log_starts(tps)).items():
                self.stage.start(p, role, offset)
        await asyncio.gather(*[await self._send_item(i) for i in resend])

    def revoked(self, p: int) -> None:
        """Drop what was applied but not checkpointed: the next owner re-reads it from the committed
        offset and rebuilds the rest from the table."""
        self.stage.revoke(p)
        self.held.pop(p, None)
        self.pending.pop(p, None)
        self.sent_futs.pop(p, None)
        self.sent_progress.pop(p, None)

    async def input(self, event: Any, wall: float, queue_empty: Callable[[], bool]) -> None:
        """Apply one record delivered at ``wall`` (``event.message``), after what the stream skipped
        before it; checkpoint when due, else send pending guard items once the input queue is drained."""
        msg = event.message
        p = msg.partition
        if p not in self.stage.partitions:
            await self.assigned(p)
        role = "events" if msg.topic == self.events_topic else "decisions"
        skipped = self.stage.admit(p, role, msg.offset)
        if skipped is not None:
            await self._read_back(p, role, msg, skipped)
        await self._apply(p, msg.topic, msg.offset, msg.value, wall)
        self.held[p].append(event)
        if self.stage.due(p, wall):
            await self.checkpoint(p)
        elif self.pending and (queue_empty() or sum(map(len, self.pending.values())) >= PENDING_MAX):
            await self.send_pending()

    async def checkpoint(self, p: int) -> None:
        """Table write → flush → guard items out → await every send → acknowledge the input covered."""
        events = self.held.pop(p, [])
        writes = self.stage.checkpoint(p, self.ports.clock())
        if writes and events:
            await self._write_nodes([(events[-1], writes)])  # the partition's own record comes last
        else:
            await self.ports.out.flush()
        futs = [await self._send_item(i) for i in self.pending.pop(p, [])]
        await asyncio.gather(*self.sent_futs.pop(p, []), *futs)
        for ev in events:
            await self.ports.commit.ack(ev)
        acked = {ev.message.tp: ev.message.offset + 1 for ev in events}  # in offset order: last wins
        stage_metrics.record_lag(
            self.group, acked, lambda tp: self.ports.log.highwater(tp.topic, tp.partition)
        )

    async def timer(self, assigned: Callable[[], set[int]]) -> None:
        """Every progress interval: count events, send pending items, then over the partitions
        ``assigned`` now, take new ones, checkpoint the due ones and tell the guard how far each has got."""
        self.events_in.inc(self.counted)
        self.counted = 0
        await self.send_pending()  # a progress mark never passes an item not yet handed out
        partitions = assigned()
        for p in sorted(partitions - set(self.stage.partitions)):
            await self.assigned(p)
        wall = self.ports.clock()
        bounds = {}
        for p in sorted(partitions):
            if self.stage.due(p, wall) and self.held.get(p):  # due() first: it moves an idle grid on
                await self.checkpoint(p)
            bound = self.stage.progress(p, wall, self.ports.log.highwater(self.events_topic, p))
            if bound[0] > -math.inf and bound != self.sent_progress.get(p):
                self.sent_progress[p] = bounds[p] = bound
        if bounds:
            headers = {"breakfix-kind": b"progress"}
            await self.ports.out.send(Topic.PROPOSALS, b"", progress_body(bounds), 0, headers)

    async def send_pending(self) -> None:
        """Write the proposing nodes' state (flushed) before their items leave, then send without
        waiting; the next checkpoint awaits the sends and acknowledges the input. Items wait here
        while more input is queued, so a burst of proposals (every node's registration at start)
        costs one state write and flush per burst instead of one per item. (Registrations sent
        without their node's write broke streaming == offline after a SIGKILL.)"""
        if not self.pending:
            return
        parts = sorted(self.pending)
        nodes = self.stage.checkpoint_nodes
        groups = [(self.held[p][-1], nodes(p, {i.node for i in self.pending[p]})) for p in parts]
        await self._write_nodes(groups)
        for p in parts:
            items = self.pending.pop(p)
            self.sent_futs[p].extend([await self._send_item(i) for i in items])

    # --- steps --------------------------------------------------------------------------------

    async def _apply(self, p: int, topic: str, offset: int, value: bytes, wall: float) -> None:
        source = f"{topic}/{p}@{offset}"
        if topic == self.events_topic:
            self.counted += 1
            out = self.stage.on_event(p, offset, value, source, wall)
        else:
            out = self.stage.on_decision(p, value, source, wall)
        if out.dead_letters or out.evidence or out.fanout:
            self.sent_futs[p].extend(await self._emit(p, out))
        if out.guard:
            self.pending.setdefault(p, []).extend(out.guard)

    async def _read_back(self, p: int, role: str, msg: Any, start: int) -> None:
        """Apply what the stream skipped before ``msg`` (streams.pipeline.input_offsets), read from
        the log."""
        records = await self.ports.log.read_skipped("node", msg, start)
        self.stage.read_to(p, role, msg.offset)
        for r in records:
            await self._apply(p, msg.topic, r.offset, r.value, self.ports.clock())

    async def _emit(self, p: int, out: Outputs) -> list[Awaitable[Any]]:
        send = self.ports.out.send
        futs = []
        for letter in out.dead_letters:
            stage_metrics.DEAD_LETTERS.labels(reason=letter.reason.value).inc()
            futs.append(await send(Topic.DEADLETTER, (letter.node or "").encode(), dumps(letter)))
        for ev in out.evidence:
            futs.append(await send(Topic.EVIDENCE, ev.node.encode(), dumps(ev), p))
        for copy in out.fanout:  # awaited before the input that caused it is acknowledged
            for q in range(TOPIC_BY_NAME[Topic.EVENTS].partitions):
                futs.append(await send(Topic.EVENTS, b"", copy, q))
        return futs

    async def _send_item(self, item: GuardItem) -> Awaitable[Any]:
        headers = {
            "breakfix-kind": item.kind.encode(),
            "breakfix-partition": str(item.partition).encode(),
            "breakfix-order": orjson.dumps(list(item.key)),
            "breakfix-id": item.item_id.encode(),
        }
        return await self.ports.out.send(Topic.PROPOSALS, item.node.encode(), item.body, 0, headers)

    async def _write_nodes(self, groups: list[tuple[Any, Writes]]) -> None:
        """Nodes batched, then each partition's last record alone in its last batch (see
        :meth:`streams.pipeline.ports.StateTable.write`): two flushes however many partitions, one when each
        writes one record (every earlier write ended with a flush, so that record is alone anyway)."""
        table = self.ports.table
        if any(len(writes) > 1 for _, writes in groups):
            await table.write([(context, writes[:-1]) for context, writes in groups])
        await table.write([(context, writes[-1:]) for context, writes in groups])
