"""The Faust app: topics, tables, agents and timers wired to the streaming runtime's classes.

The runtime is :class:`streams.pipeline.worker_shell.WorkerShell` (one lock, the rebalance rules) over
:class:`streams.pipeline.node_shell.NodeShell` and :class:`streams.pipeline.guard_shell.GuardShell`
(what to write, send and acknowledge, and when), which reach Kafka and the tables through the ports
of :mod:`streams.pipeline.ports`; :mod:`streams.pipeline.faust_ports` implements them over this app.
This module only builds the app and connects Faust's callbacks to the shell's lifecycle methods.
Faust settings that matter here:

* Tansu answers ListOffsets 'latest' with the base offset of the last record batch + 1, which made
  Faust's changelog recovery stop early or raise ConsistencyError. ``producer_max_batch_size=1`` fixed
  it but capped the node stage at ~700 events/s (every changelog record its own request). Instead
  every checkpoint ends with one record alone in its batch (:class:`streams.pipeline.faust_ports.FaustTable`),
  so the answer is exact for every changelog partition after every completed checkpoint; a crash
  inside a checkpoint can only hide records of that unfinished checkpoint, whose input is not
  acknowledged yet and is re-read. ``table_standby_replicas=0``: no standby reads changelogs with the
  wrong end offset.
* ``stream_wait_empty=False``: input stays unacknowledged until its checkpoint, so a rebalance must
  not wait for "all events acked".
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP

from schemas.topics import TOPIC_BY_NAME, Topic
from streams.kafka.client import faust_credentials
from streams.kafka.embedded_broker import free_port
from streams.keys import load_keyring, load_signer
from streams.pipeline.compat import BreakfixApp
from streams.pipeline.faust_ports import FaustInputLog, FaustOutbound, FaustTable, StreamCommit
from streams.pipeline.guard_shell import GuardShell
from streams.pipeline.guard_stage import GuardStage
from streams.pipeline.heap import HeapKeeper
from streams.pipeline.node_shell import NodeShell
from streams.pipeline.node_stage import EngineLike, NodeStage
from streams.pipeline.ports import Ports
from streams.pipeline.worker_shell import WorkerShell
from streams.settings import StreamSettings
from streams.signed_input import SignedInput

_PRODUCER_BATCH_BYTES = 512 * 1024
"""Faust's default (16 KiB) split a checkpoint's ~0.4 MB of node records into ~25 batches per
partition, and aiokafka sends one request per broker at a time: 25 round trips while the checkpoint
holds the stage (flushes of up to 0.8 s under load: the tail of event->decision latency). Half the
broker's 1 MB message limit."""


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


def create_app(settings: StreamSettings, bundle: EngineBundle | None = None) -> faust.App:
    """Build the worker's Faust app (both stages; the guard runs wherever its partition is assigned)."""
    bundle = bundle or load_engine(settings)
    datadir = settings.data_dir / f"worker-{settings.worker_index}"
    datadir.mkdir(parents=True, exist_ok=True)
    n_parts = TOPIC_BY_NAME[Topic.EVENTS].partitions
    app = BreakfixApp(
        settings.app_id,
        broker_credentials=faust_credentials(settings),
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

    def topic(*names: str) -> Any:
        return app.topic(
            *(settings.topic(n) for n in names),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    def state_schema() -> faust.Schema[Any, Any]:
        return faust.Schema(key_type=str, value_type=bytes, key_serializer="json", value_serializer="raw")

    names: dict[str, str] = {t: settings.topic(t) for t in Topic}
    # EVENTS: the node stage publishes the fleet-wide copies of scoped change events (policy.driver).
    sent = (Topic.PROPOSALS, Topic.DECISIONS, Topic.EVIDENCE, Topic.DEADLETTER, Topic.EVENTS)
    out = FaustOutbound(app, {t: topic(t) for t in sent})
    input_log = FaustInputLog(app, settings)
    clock = time.monotonic
    node_commit, guard_commit = StreamCommit(), StreamCommit()
    nodes_table = FaustTable(app.Table("nodes", partitions=n_parts, schema=state_schema()), out)
    guard_table = FaustTable(app.Table("guard", partitions=1, schema=state_schema()), out)

    engine: EngineLike = bundle.engine
    stage = NodeStage(
        engine,
        bundle.runtime_from_bytes,
        bundle.engine.gate_cfg,
        bundle.engine.policy.tick_s,
        checkpoint_events=settings.checkpoint_events,
        checkpoint_s=settings.checkpoint_s,
        idle_s=settings.idle_s,
        signed=SignedInput(load_keyring(settings)),
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

    node = NodeShell(stage, Ports(out, nodes_table, node_commit, input_log, clock), names, settings.app_id)
    guard = GuardShell(
        new_guard,
        Ports(out, guard_table, guard_commit, input_log, clock),
        names,
        settings.checkpoint_s,
        signer=load_signer(settings, "guard"),  # every worker may become the guard: fail at start
        keyring=load_keyring(settings),
    )
    recovery: list[Any] = []

    def ready() -> bool:
        """Recovery done: tables restored and stream partitions seeked back to committed offsets.
        (Called per event: the recovery service is looked up once, not through two properties.)"""
        if not recovery:
            recovery.append(app.tables.recovery)  # type: ignore[attr-defined]
        return not app.rebalancing and bool(recovery[0].completed.is_set())

    heap = HeapKeeper(settings.heap_freeze_s, settings.heap_full_s, clock())
    worker = WorkerShell(node, guard, ready, lambda: app.consumer.assignment(), heap, clock)

    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        await worker.revoked(revoked)

    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        worker.assigned()

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    @app.agent(topic(Topic.EVENTS, Topic.DECISIONS), name="node-stage")
    async def node_agent(stream: Any) -> None:
        stream = node_commit.stream = stream.noack()
        queue_empty = stream.channel.queue.empty
        async for event in stream.events():
            await worker.node_input(event, queue_empty)

    @app.timer(settings.progress_s)  # type: ignore[untyped-decorator]
    async def node_tick() -> None:
        await worker.node_timer()

    @app.agent(topic(Topic.PROPOSALS, Topic.CONTROL), name="guard-stage")
    async def guard_agent(stream: Any) -> None:
        stream = guard_commit.stream = stream.noack()
        async for event in stream.events():
            await worker.guard_input(event)

    @app.timer(settings.progress_s)  # type: ignore[untyped-decorator]
    async def guard_tick() -> None:
        await worker.guard_timer()

    _ = (node_agent, node_tick, guard_agent, guard_tick)
    return app
