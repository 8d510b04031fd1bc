"""The Faust app: topics, tables, the node-stage and guard agents, and their timers.

A thin shell: :mod:`streams.node_stage` and :mod:`streams.guard_stage` decide what to write and send;
this module only moves bytes between topics and tables, in the order their durability rules need
(table write → producer flush → sends → acknowledge input). Faust settings that matter here:

* Tansu answers ListOffsets 'latest' with the base offset of the last record batch + 1, which made
  Faust's changelog recovery stop early or raise ConsistencyError. ``producer_max_batch_size=1`` fixed
  it but capped the node stage at ~700 events/s (every changelog record its own request). Instead
  every checkpoint ends with one record alone in its batch (:func:`write_table`), so the answer is
  exact for every changelog partition after every completed checkpoint; a crash inside a checkpoint
  can only hide records of that unfinished checkpoint, whose input is not acknowledged yet and is
  re-read. ``table_standby_replicas=0``: no standby reads changelogs with the wrong end offset.
* ``stream_wait_empty=False``: input stays unacknowledged until its checkpoint, so a rebalance must
  not wait for "all events acked".
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from pydantic import ValidationError

from schemas.control import ControlMessage
from schemas.recording import dumps
from schemas.topics import TOPIC_BY_NAME, Topic
from streams import metrics as stage_metrics
from streams.compat import BreakfixApp, buffer_task_waiting, in_partition_of, mark_skipped_read
from streams.embedded_broker import free_port
from streams.gap_reader import read_range
from streams.guard_stage import GuardStage, progress_body, read_progress
from streams.heap import HeapKeeper
from streams.node_stage import REFUSED as STATE_REFUSED
from streams.node_stage import EngineLike, NodeStage, Outputs, stored_dict
from streams.settings import StreamSettings

log = logging.getLogger(__name__)

EVENTS, DECISIONS, PROPOSALS = Topic.EVENTS, Topic.DECISIONS, Topic.PROPOSALS
INPUT_ROLES = {"events": EVENTS, "decisions": DECISIONS}
"""The node stage's input topics by the role names its checkpoint keeps their offsets under."""
CONTROL, EVIDENCE, DEADLETTER = Topic.CONTROL, Topic.EVIDENCE, Topic.DEADLETTER
_GUARD_KEY = "guard"
_SENT_KEY = "guard-sent"
"""Ids of the last outbox confirmed sent: a small record instead of a second full snapshot per
decision batch (the snapshot of a 10,000-node guard is ~170 KB and ~50 ms to encode)."""
_PENDING_MAX = 256
"""Guard items held back while input is queued before their nodes' state is written and they leave."""
_PRODUCER_BATCH_BYTES = 512 * 1024
"""Faust's default (16 KiB) split a checkpoint's ~0.4 MB of node records into ~25 batches per
partition, and aiokafka sends one request per broker at a time: 25 round trips while the checkpoint
holds the stage (flushes of up to 0.8 s under load: the tail of event->decision latency). Half the
broker's 1 MB message limit."""
_FLUSH_HANDOVER_S = 5.0
"""Longest a flush waits for Faust's buffer task to hand its last message to the producer."""


@dataclass(frozen=True)
class EngineBundle:
    """The engine and the codecs of its states: what the shell needs from ``policy.engine``."""

    engine: Any
    runtime_from_bytes: Any
    guard_to_bytes: Any
    guard_from_bytes: Any
    item_models: dict[str, Any]


def load_engine(settings: StreamSettings) -> EngineBundle:
    """The policy engine named by ``settings.engine`` ("module:function"), or ``policy.engine``."""
    if settings.engine:
        module, _, func = settings.engine.partition(":")
        return importlib.import_module(module).__dict__[func](settings)  # type: ignore[no-any-return]
    from policy.engine import Engine, NodeRuntime, guard_from_bytes, guard_to_bytes
    from policy.model import load_policy
    from schemas.proposal import Proposal, Registration

    return EngineBundle(
        Engine(load_policy(settings.policy_file)),
        NodeRuntime.from_bytes,
        guard_to_bytes,
        guard_from_bytes,
        {"proposal": Proposal, "registration": Registration},
    )


async def sent_decision_ids(
    settings: StreamSettings, partitions: set[int | None], tail: int = 1000
) -> set[str]:
    """Ids among the last ``tail`` decisions of ``partitions``: a restarted guard drops what its
    predecessor sent but had not yet cleared from its outbox (the crash window between the two)."""
    parts = {p for p in partitions if p is not None}
    if not parts:
        return set()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic(DECISIONS), p) for p in sorted(parts)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(0, ends[tp] - tail))
        ids: set[str] = set()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                ids.update(orjson.loads(m.value)["id"] for m in msgs if m.value)
        return ids
    finally:
        await consumer.stop()


def create_app(settings: StreamSettings, bundle: EngineBundle | None = None) -> faust.App:
    """Build the worker's Faust app (both stages; the guard runs wherever its partition is assigned)."""
    bundle = bundle or load_engine(settings)
    datadir = settings.data_dir / f"worker-{settings.worker_index}"
    datadir.mkdir(parents=True, exist_ok=True)
    n_parts = TOPIC_BY_NAME[EVENTS].partitions
    app = BreakfixApp(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker=f"kafka://{settings.broker}",
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(datadir),
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_s,
        table_standby_replicas=0,
        producer_max_batch_size=_PRODUCER_BATCH_BYTES,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        web_port=settings.web_port + settings.worker_index if settings.web_port else free_port(),
        web_host=settings.web_host,
        web_bind=settings.web_host,
    )

    def topic(name: str, *more: str) -> Any:
        return app.topic(
            *(settings.topic(n) for n in (name, *more)),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    t_events_decisions = topic(EVENTS, DECISIONS)
    t_proposals_control = topic(PROPOSALS, CONTROL)
    t_proposals, t_decisions = topic(PROPOSALS), topic(DECISIONS)
    t_evidence, t_deadletter = topic(EVIDENCE), topic(DEADLETTER)
    events_name = settings.topic(EVENTS)
    control_name = settings.topic(CONTROL)

    def state_schema() -> faust.Schema[Any, Any]:
        return faust.Schema(key_type=str, value_type=bytes, key_serializer="json", value_serializer="raw")

    nodes_table = app.Table("nodes", partitions=n_parts, schema=state_schema())
    guard_table = app.Table("guard", partitions=1, schema=state_schema())

    engine: EngineLike = bundle.engine
    node = NodeStage(
        engine,
        bundle.runtime_from_bytes,
        bundle.engine.gate_cfg,
        bundle.engine.policy.tick_s,
        checkpoint_events=settings.checkpoint_events,
        checkpoint_s=settings.checkpoint_s,
        idle_s=settings.idle_s,
    )

    def new_guard() -> GuardStage:
        return GuardStage(
            bundle.engine,
            bundle.guard_to_bytes,
            bundle.guard_from_bytes,
            bundle.item_models,
            n_parts,
            settings.guard_max_wait_s,
        )

    gs = {"stage": new_guard(), "on": False}
    heap = HeapKeeper(settings.heap_freeze_s, settings.heap_full_s, time.monotonic())
    lock = asyncio.Lock()
    held: dict[int, list[Any]] = defaultdict(list)
    sent_progress: dict[int, Any] = {}
    guard_held: dict[str, list[Any]] = defaultdict(list)
    guard_marks: list[Any] = []
    guard_acks: list[Any] = []
    """Guard input whose effect is in memory but not yet in the table: acknowledged after the next
    snapshot (a decision forces one at once; otherwise every ``checkpoint_s``)."""
    guard_saved = {"at": 0.0}
    sent_futs: dict[int, list[Awaitable[Any]]] = defaultdict(list)
    """Sends of a partition since its last checkpoint, awaited before that checkpoint acknowledges."""
    pending: dict[int, list[Any]] = {}
    """Guard items whose nodes' state is not written yet, per partition: sent by send_pending (input
    queue drained, _PENDING_MAX reached, or the progress timer) or by the partition's checkpoint."""
    streams: dict[str, Any] = {}
    events_in = stage_metrics.EVENTS.labels(stage="node")
    counted = {"events": 0}
    """Events read since the last progress tick, which adds them to ``events_in`` (a Prometheus
    counter takes a lock per increment: once per tick instead of once per event)."""

    recovery: list[Any] = []

    def ready() -> bool:
        """Recovery done: tables restored and stream partitions seeked back to committed offsets.
        (Called per event: the recovery service is looked up once, not through two properties.)"""
        if not recovery:
            recovery.append(app.tables.recovery)  # type: ignore[attr-defined]
        return not app.rebalancing and bool(recovery[0].completed.is_set())

    async def log_starts(tps: dict[str, TP]) -> dict[str, int]:
        """First offset of each input partition: where a stage with no checkpoint begins reading."""
        starts = await app.consumer.earliest_offsets(*tps.values())
        return {role: int(starts[tp]) for role, tp in tps.items()}

    async def skipped_records(stage: str, msg: Any, start: int) -> list[Any]:
        """The records of ``msg``'s partition from ``start`` up to ``msg`` that the consumer skipped."""
        records = await read_range(settings.broker, msg.topic, msg.partition, start, msg.offset)
        stage_metrics.record_gap(stage, len(records))
        # Faust never delivered them, so never sees them acknowledged: its gap ranges count them
        # acknowledged once a later offset is, which the checkpoint covering them all acknowledges.
        await mark_skipped_read(app.consumer, msg.tp, start, msg.offset - 1)
        return records

    mine: set[TP] = set()
    """This worker's assignment, kept from the rebalance signals: asking the consumer builds a new set
    of every assigned partition, which cost a third of the node agent's time when done per event."""

    rebalances = [0]
    """Revocations so far: input taken from the stream before the latest one is stale."""

    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        """After a rebalance Faust re-reads every partition from its committed offset, so what this
        worker applied but did not checkpoint is dropped here and rebuilt from the table."""
        rebalances[0] += 1
        async with lock:
            mine.difference_update(revoked)
            forget(revoked)

    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        mine.clear()
        mine.update(app.consumer.assignment())

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    def forget(revoked: set[TP]) -> None:
        for tp in revoked:
            if tp.topic == events_name:
                node.revoke(tp.partition)
                held.pop(tp.partition, None)
                pending.pop(tp.partition, None)
                sent_futs.pop(tp.partition, None)
                sent_progress.pop(tp.partition, None)
            elif tp.topic == settings.topic(PROPOSALS):
                gs["on"] = False
                guard_held.clear()
                guard_marks.clear()
                guard_acks.clear()

    def assigned(name: str) -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == name}

    # --- node stage ------------------------------------------------------------------------

    async def take_partition(p: int) -> None:
        resend = node.assign(p, list(nodes_table.items()), time.monotonic())
        stage_metrics.STATE_REFUSED.labels(stage="node").inc(node.partitions[p].refused)
        roles = node.unstarted(p, list(INPUT_ROLES))
        if roles:
            starts = await log_starts({role: TP(settings.topic(INPUT_ROLES[role]), p) for role in roles})
            for role, offset in starts.items():
                node.start(p, role, offset)
        await asyncio.gather(*[await send_item(i) for i in resend])

    async def write_table(table: Any, context: Any, writes: list[tuple[str, bytes]]) -> None:
        """Write and flush, so the batch ends here: the last batch of a changelog partition then holds
        exactly one record after every completed checkpoint, and Tansu's ListOffsets answer (base
        offset of the last batch + 1) is exact for the recovery that reads it."""
        await write_groups(table, [(context, writes)])

    async def write_groups(table: Any, groups: list[tuple[Any, list[tuple[str, bytes]]]]) -> None:
        """Each group's writes in its context event's partition, then one flush for them all."""
        for context, writes in groups:
            with in_partition_of(context):
                for key, value in writes:
                    table[key] = value
        await flush()

    async def flush() -> None:
        """Until every table write has left Faust's buffer and been acknowledged. Faust's own flush
        gives up when one buffered message takes over 0.1 s to hand over (a loaded machine, a large
        checkpoint), which let a checkpoint's closing record share a batch with the next records and
        recovery stop short of it."""
        buffer = app.producer.buffer
        # Faust's buffer task takes a message off its queue before it hands it to the producer, so an
        # empty queue can still have one message on its way that the producer's flush misses (seen: a
        # checkpoint's closing record batched with the next write and hidden from recovery). The task
        # waits on the queue again (a getter) only once that message is with the producer. Bounded,
        # in case the buffer task is not running at all.
        deadline = time.monotonic() + _FLUSH_HANDOVER_S
        while buffer.size or (not buffer_task_waiting(buffer) and time.monotonic() < deadline):
            await app.producer.flush()
            await asyncio.sleep(0)
        await app.producer.flush()

    async def send_item(item: Any) -> Any:
        headers = {
            "breakfix-kind": item.kind.encode(),
            "breakfix-partition": str(item.partition).encode(),
            "breakfix-order": orjson.dumps(list(item.key)),
            "breakfix-id": item.item_id.encode(),
        }
        return await t_proposals.send(key=item.node.encode(), value=item.body, partition=0, headers=headers)

    async def emit(p: int, out: Outputs) -> list[Awaitable[Any]]:
        futs = []
        for letter in out.dead_letters:
            stage_metrics.DEAD_LETTERS.labels(reason=letter.reason.value).inc()
            futs.append(await t_deadletter.send(key=(letter.node or "").encode(), value=dumps(letter)))
        for ev in out.evidence:
            futs.append(await t_evidence.send(key=ev.node.encode(), value=dumps(ev), partition=p))
        return futs

    async def write_nodes(groups: list[tuple[Any, list[tuple[str, bytes]]]]) -> None:
        """Nodes batched, then each partition's last record alone in its last batch (see
        :func:`write_table`): two flushes however many partitions, one when each writes one record
        (every earlier write ended with a flush, so that record is alone in its batch anyway)."""
        if any(len(writes) > 1 for _, writes in groups):
            await write_groups(nodes_table, [(context, writes[:-1]) for context, writes in groups])
        await write_groups(nodes_table, [(context, writes[-1:]) for context, writes in groups])

    async def send_pending() -> None:
        """Write the proposing nodes' state (flushed) before their items leave, then send without
        waiting; the next checkpoint awaits the sends and acknowledges the input. Items wait here
        while more input is queued, so a burst of proposals (every node's registration at start)
        costs one state write and flush per burst instead of one per item. (Registrations sent
        without their node's write broke streaming == offline after a SIGKILL.)"""
        if not pending:
            return
        parts = sorted(pending)
        groups = [(held[p][-1], node.checkpoint_nodes(p, {i.node for i in pending[p]})) for p in parts]
        await write_nodes(groups)
        for p in parts:
            items = pending.pop(p)
            sent_futs[p].extend([await send_item(i) for i in items])

    async def checkpoint(p: int) -> None:
        """Table write → flush → proposals out → acknowledge the input the checkpoint covers."""
        events = held.pop(p, [])
        writes = node.checkpoint(p, time.monotonic())
        if writes and events:
            await write_nodes([(events[-1], writes)])  # the partition's own record comes last
        else:
            await flush()
        futs = [await send_item(i) for i in pending.pop(p, [])]
        await asyncio.gather(*sent_futs.pop(p, []), *futs)
        for ev in events:
            await streams["node"].ack(ev)
        acked = {ev.message.tp: ev.message.offset + 1 for ev in events}  # in offset order: last wins
        stage_metrics.record_lag(settings.app_id, acked, app.consumer.highwater)

    async def node_input(p: int, topic: str, offset: int, value: bytes, wall: float) -> None:
        source = f"{topic}/{p}@{offset}"
        if topic == events_name:
            counted["events"] += 1
            out = node.on_event(p, offset, value, source, wall)
        else:
            out = node.on_decision(p, value, source, wall)
        if out.dead_letters or out.evidence:
            sent_futs[p].extend(await emit(p, out))
        if out.guard:
            pending.setdefault(p, []).extend(out.guard)

    async def read_back(p: int, role: str, msg: Any, start: int) -> None:
        """Apply what the consumer skipped before ``msg`` (streams.input_offsets), read from the log."""
        records = await skipped_records("node", msg, start)
        node.read_to(p, role, msg.offset)
        for r in records:
            await node_input(p, msg.topic, r.offset, r.value, time.monotonic())

    @app.agent(t_events_decisions, name="node-stage")
    async def node_agent(stream: Any) -> None:
        stream = streams["node"] = stream.noack()
        queue = stream.channel.queue
        async for event in stream.events():
            msg = event.message
            taken = rebalances[0]
            while not ready() and rebalances[0] == taken:
                # Faust resumes the flow (already seeked to the committed offsets) a moment before it
                # reports the rebalance done; input delivered in between is never delivered again, so
                # wait for it, never drop it (dropping lost events and let restored nodes act on a gap).
                await asyncio.sleep(0.01)
            p, wall = msg.partition, time.monotonic()
            async with lock:
                if rebalances[0] != taken or msg.tp not in mine:
                    continue  # taken before a rebalance: Faust re-reads it from the committed offset
                if p not in node.partitions:
                    await take_partition(p)
                role = "events" if msg.topic == events_name else "decisions"
                skipped = node.admit(p, role, msg.offset)
                if skipped is not None:
                    await read_back(p, role, msg, skipped)
                await node_input(p, msg.topic, msg.offset, msg.value, wall)
                held[p].append(event)
                if node.due(p, wall):
                    await checkpoint(p)
                elif pending and (queue.empty() or sum(map(len, pending.values())) >= _PENDING_MAX):
                    await send_pending()

    @app.timer(settings.progress_s)  # type: ignore[untyped-decorator]
    async def node_tick() -> None:
        if not ready():
            return
        heap.tick(time.monotonic())
        async with lock:
            events_in.inc(counted["events"])
            counted["events"] = 0
            await send_pending()  # a progress mark never passes an item not yet handed out
            mine = assigned(events_name)
            for p in sorted(mine - set(node.partitions)):
                await take_partition(p)
            wall = time.monotonic()
            bounds = {}
            for p in sorted(mine):
                if node.due(p, wall) and held.get(p):  # due() first: it moves an idle grid on
                    await checkpoint(p)
                bound = node.progress(p, wall, app.consumer.highwater(TP(events_name, p)))
                if bound[0] > -math.inf and bound != sent_progress.get(p):
                    sent_progress[p] = bounds[p] = bound
            if bounds:
                headers = {"breakfix-kind": b"progress"}
                await t_proposals.send(key=b"", value=progress_body(bounds), partition=0, headers=headers)

    # --- guard stage -----------------------------------------------------------------------

    def guard() -> GuardStage:
        stage: GuardStage = gs["stage"]  # type: ignore[assignment]
        return stage

    async def guard_start() -> None:
        """This worker just got the guard partition: restore and re-send what a crash left unsent."""
        gs["stage"] = new_guard()
        stored = guard_table.get(_GUARD_KEY)
        if stored is not None:
            try:
                guard().restore(stored)
            except STATE_REFUSED as e:
                # Refused, never executed: the guard starts empty and reads its inputs back from
                # their log start, as a guard that never wrote a snapshot does.
                log.error("the guard's stored state record was refused (%s); its state is rebuilt "
                          "from the proposals and control topics' retained records", e)  # fmt: skip
                stage_metrics.STATE_REFUSED.labels(stage="guard").inc()
                gs["stage"] = new_guard()
                stored = None
        if stored is not None:
            confirmed = guard_table.get(_SENT_KEY)
            done = set(stored_dict(confirmed)["sent"]) if confirmed is not None else set()
            guard().outbox = [d for d in guard().outbox if d.id not in done]
            sent = await sent_decision_ids(
                settings, {guard().node_partition.get(d.node) for d in guard().outbox}
            )
            guard().outbox = [d for d in guard().outbox if d.id not in sent]
        else:
            tps = {"proposals": TP(settings.topic(PROPOSALS), 0), "control": TP(control_name, 0)}
            for role, offset in (await log_starts(tps)).items():
                guard().inputs.start(role, offset)
        guard_held.clear()
        guard_marks.clear()
        guard_acks.clear()
        gs["on"] = True
        await guard_flush(None, persist=False)

    async def guard_flush(context: Any, persist: bool) -> None:
        """Decide what the watermark releases; persist state + outbox, send it, then acknowledge.

        The snapshot (fleet state, dedup ids, outbox) is written at once when there are decisions to
        send or a control message arrived, else every ``checkpoint_s``: one snapshot per released
        registration batch was quadratic in fleet size and made the guard the slowest hop."""
        g = guard()
        wall = time.monotonic()
        done = g.release(wall)
        guard_acks.extend(ev for i in done for ev in guard_held.pop(i, []))
        guard_acks.extend(guard_marks)
        guard_marks.clear()
        context = context if context is not None else (guard_acks[-1] if guard_acks else None)
        periodic = bool(guard_acks) and wall - guard_saved["at"] >= settings.checkpoint_s
        if not (persist or g.outbox or periodic) or context is None:
            return
        guard_saved["at"] = wall
        await write_table(guard_table, context, [(_GUARD_KEY, g.snapshot())])
        outbox, g.outbox = g.outbox, []
        futs = []
        for d in outbox:
            stage_metrics.observe_decision(d)
            p = g.node_partition.get(d.node)
            futs.append(await t_decisions.send(key=d.node.encode(), value=dumps(d), partition=p))
        await asyncio.gather(*futs)
        if outbox:  # confirmed sent: a restart drops these from the persisted outbox
            sent_ids = orjson.dumps({"sent": [d.id for d in outbox]})
            await write_table(guard_table, context, [(_SENT_KEY, sent_ids)])
        acks = list(guard_acks)
        guard_acks.clear()
        for ev in acks:
            await streams["guard"].ack(ev)

    def guard_input(topic: str, raw_headers: Any, value: bytes, offset: int, event: Any) -> bool:
        """Apply one guard input (``event`` is None for one read back from the log: nothing of it to
        acknowledge); True for a control message, whose effect is written at once."""
        headers = {k: bytes(v) for k, v in (raw_headers or [])}
        kind = headers.get("breakfix-kind", b"").decode()
        to_ack = guard_marks if event is not None else []
        if topic == control_name:
            try:
                lever = ControlMessage.model_validate_json(value)
            except ValidationError as err:  # a lever that fits no kind is never applied, nor fatal
                log.warning("ignoring a bad control message at offset %s: %s", offset, err)
                to_ack.append(event)
                return False
            guard().on_control(lever)
            to_ack.append(event)
            return True
        if kind == "progress":
            for part, bound in read_progress(value).items():
                guard().on_progress(part, bound)
            to_ack.append(event)
            return False
        t, n, s = orjson.loads(headers["breakfix-order"])
        item_id = headers["breakfix-id"].decode()
        p = int(headers["breakfix-partition"])
        key = (float(t), str(n), int(s))
        if not guard().on_item(kind, key, item_id, value, p, time.monotonic(), offset):
            to_ack.append(event)
        elif event is not None:
            guard_held[item_id].append(event)
        return False

    @app.agent(t_proposals_control, name="guard-stage")
    async def guard_agent(stream: Any) -> None:
        stream = streams["guard"] = stream.noack()
        async for event in stream.events():
            msg = event.message
            async with lock:
                if not gs["on"]:
                    await guard_start()
                role = "control" if msg.topic == control_name else "proposals"
                control = False
                skipped = guard().inputs.admit(role, msg.offset)
                if skipped is not None:
                    guard().inputs.applied(role, msg.offset)
                    for r in await skipped_records("guard", msg, skipped):
                        control = guard_input(r.topic, r.headers, r.value, r.offset, None) or control
                control = guard_input(msg.topic, msg.headers, msg.value, msg.offset, event) or control
                await guard_flush(event, persist=control)

    @app.timer(settings.progress_s)  # type: ignore[untyped-decorator]
    async def guard_tick() -> None:
        if not ready() or not gs["on"]:
            return
        async with lock:
            if len(guard().watermark) or guard_acks:
                context = next((evs[-1] for evs in guard_held.values() if evs), None)
                await guard_flush(context, persist=False)

    _ = (node_agent, node_tick, guard_agent, guard_tick)
    return app
