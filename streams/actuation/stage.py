"""The actuator stage: decisions topic in, actuator runs out, their results back on the events topic.

Where this sits: after the guard. It consumes ``breakfix.decisions`` in its own consumer group, keeps
the operator's levers (kill switch global and per pool, exclusions, approvals) from the compacted
control topic, and hands each decision to a :data:`Handler` built by the caller (``breakfix run
--role actuators`` or ``breakfix demo`` wire it to actuators/dispatch.py and the workflow engine; the
streams layer never imports actuators). Every ``action.result`` the handler emits is produced to
``breakfix.events`` keyed by node, so the node stage closes the loop (Quarantined → Validating →
Healthy or Escalated).

Delivery: at least once. A decision's offset is committed only after its handler returned, i.e. the
run finished, paused or was rejected and the workflow journal says so durably; a crash before the
commit redelivers the decision and the journal resumes the run (a completed step is never repeated,
an interrupted one is re-run under the same idempotency key). Results are produced with acks=all
and waited for before the engine journals a step, so a crash can repeat an event (same id, dropped
downstream) but never lose one.

Raw aiokafka, not Faust: the stage keeps no tables (the journal is its state), and a plain consumer
avoids the Tansu end-offset quirk Faust's changelog recovery trips over. The control topic is read
from its beginning by a group-less consumer until the fetch high watermark (correct on Tansu, unlike
ListOffsets 'latest') before the first decision is handled.

Authentication (streams.actuation.admission): a decision acts only when the guard signed it, from the current
guard epoch, recently, and this stage never finished it; anything else is a dead letter with its
reason. The ``action.result`` events the stage emits carry its own seal (role ``actuators``).

Partitions are handled concurrently, the decisions of one partition in order; workflows run in
threads because actuators block. A run paused by a lever resumes when a lever lifts only under a guard
stamp younger than ``decision_max_age_s``: its own while still fresh, else the one on the decision
the guard issues again when the lever lifts (``<id>:reissued:<lever id>``, admitted like any decision,
resuming the original's run and workflow journal; a re-issue of a run not paused here does nothing).
The paused decisions are kept in ``paused_dir`` so a restart does not forget them; a run a crash
interrupted is redelivered and resumes from the journal (streams.actuation.admission).

A handler that raises (the broker refused a result, the journal's disk failed: actuator errors are
the workflow engine's and never get here) has left its run unfinished, the node perhaps cordoned.
Committing it as done stranded the node, so the decision is kept instead (in ``paused_dir/retry``
when there is one, before its offset is committed) and handled again with growing backoff, at most
``retry_max_s`` apart, and right away after a restart; the journal resumes the run where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from policy.levers import Levers
from policy.levers import apply as apply_lever
from schemas.control import ControlMessage
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.decision import REISSUED, Decision
from schemas.recording import dumps
from schemas.signing import Keyring, Signer
from schemas.topics import Topic
from streams import metrics as stage_metrics
from streams.actuation.admission import DecisionJournal, admit
from streams.kafka.client import kafka_options
from streams.keys import load_keyring, load_signer
from streams.settings import StreamSettings
from streams.signed_input import read_lever

log = logging.getLogger("breakfix.actuators")

DECISIONS, EVENTS = Topic.DECISIONS, Topic.EVENTS
CONTROL, DEADLETTER = Topic.CONTROL, Topic.DEADLETTER

RELEASED = ":released"
"""Suffix the guard gives the decision of a held proposal it released (policy.guard)."""

Emit = Callable[[dict[str, Any]], None]
"""Publish one action.result event (called from a workflow thread; returns once the broker acked)."""


@dataclass
class ControlState:
    """The levers actuators re-check at the last moment (:mod:`policy.levers`, applied in log order)
    and each node's pool as the guard named it; also the engine's ``Safety``."""

    levers: Levers = field(default_factory=Levers)
    node_pool: dict[str, str] = field(default_factory=dict)

    def apply(self, m: ControlMessage) -> bool:
        """Apply one message; True when it lifted a lever (paused runs may resume)."""
        return apply_lever(self.levers, m).lifted

    def learn(self, d: Decision) -> None:
        """The guard records each node's pool with its exclusion check; remember it."""
        for check in d.guard:
            pool = check.figures.get("pool")
            if check.name == "exclusion" and isinstance(pool, str) and pool:
                self.node_pool[d.node] = pool

    def pool_of(self, node: str) -> str | None:
        return self.node_pool.get(node)

    def killswitch_on(self, pool: str | None) -> bool:
        return self.levers.killswitch_on(pool)

    def excluded(self, node: str, pool: str | None) -> bool:
        return self.levers.excluded(node, pool if pool is not None else self.node_pool.get(node))

    def approvers(self, d: Decision) -> tuple[tuple[str, str], ...]:
        """(actor, role) of everyone whose approval of this decision or this node covers it now. A
        held decision released after its approval arrives as ``<held id>:released`` (see
        policy.guard.decision_id); the approval names the held id, the one operators saw."""
        approved_id = d.id.removesuffix(RELEASED)
        found = self.levers.approvals_for(d.node, approved_id, d.failure_class, d.action, time.time())
        return tuple((a.actor, a.role) for a in found)


Handler = Callable[[Decision, ControlState], str]
"""Handle one decision (blocking; run in a thread); returns the verdict, ``"paused"`` when a lever
stopped the run so the stage resubmits it once a lever lifts."""

MakeHandler = Callable[[Emit, ControlState], Handler]


@dataclass
class StageStats:
    decisions: int = 0
    dead_letters: int = 0
    events: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    """Dead-lettered decisions by reason (unsigned, bad_signature, expired, fenced, replayed, ...)."""


class ActuatorStage:
    """One stage process: ``await stage.run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        settings: StreamSettings,
        make_handler: MakeHandler,
        group_id: str = "",
        paused_dir: Path | None = None,
        retry_s: float = 5.0,
        retry_max_s: float = 300.0,
        keyring: Keyring | None = None,
        signer: Signer | None = None,
    ) -> None:
        """``paused_dir`` keeps the decisions whose runs a lever paused (their offsets are committed),
        so a restarted stage still resumes them once the lever lifts, and those whose handler raised
        (retried after ``retry_s``, doubling up to ``retry_max_s``); the admission journal lives
        beside it. ``keyring``/``signer``: loaded from the settings' key files when not given."""
        self.settings = settings
        self.keyring = keyring or load_keyring(settings)
        self.signer = signer or load_signer(settings, "actuators")
        self.journal = DecisionJournal(paused_dir.parent / "admitted.sqlite" if paused_dir else None)
        self.paused_dir = paused_dir
        self.retry_s, self.retry_max_s = retry_s, retry_max_s
        self._retry: dict[str, tuple[Decision, int, float]] = {}
        """Decisions whose handler raised: (decision, failed attempts, monotonic time of the next)."""
        self.make_handler = make_handler
        self.group_id = group_id or f"{settings.app_id}-actuators"
        self.control = ControlState()
        self.stats = StageStats()
        self.ready = asyncio.Event()
        """Set once the control topic was read up to its end and decisions are being consumed."""
        self._paused: dict[str, Decision] = {}
        self._queues: dict[int, asyncio.Queue[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self, stop: asyncio.Event) -> StageStats:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        self._producer = AIOKafkaProducer(**kafka_options(settings=s), acks="all", linger_ms=2)
        await self._producer.start()
        control = AIOKafkaConsumer(**kafka_options(settings=s), enable_auto_commit=False)
        self._consumer = AIOKafkaConsumer(
            s.topic(DECISIONS),
            **kafka_options(settings=s),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.heartbeat_s * 1000),
        )
        try:
            await control.start()
            await self._catch_up(control)
            self.handler = self.make_handler(self._emit, self.control)
            await self._consumer.start()
            self._tasks.append(asyncio.create_task(self._follow_control(control, stop)))
            self._paused = self._load_paused()
            self._retry = {d.id: (d, 1, 0.0) for d in self._load(self._retry_dir)}  # due at once
            await self._resume_paused()  # a lever may have lifted while this stage was down
            self._tasks.append(asyncio.create_task(self._retry_loop(stop)))
            self.ready.set()
            while not stop.is_set():
                got = await self._consumer.getmany(timeout_ms=200, max_records=500)
                for tp, records in got.items():
                    queue = self._queue(tp)
                    for r in records:
                        await queue.put(r)
            await self._drain()
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            with contextlib.suppress(Exception):
                await control.stop()
            await self._producer.stop()
            self.journal.close()
        return self.stats

    # --- control topic --------------------------------------------------------------------------

    async def _catch_up(self, consumer: AIOKafkaConsumer) -> None:
        """Read the control topic from the start up to its fetch high watermark."""
        tp = TopicPartition(self.settings.topic(CONTROL), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            got = await consumer.getmany(tp, timeout_ms=300)
            self._apply_control(got.get(tp, []))
            high = consumer.highwater(tp)
            if not got and (high is None or await consumer.position(tp) >= high):
                return
        log.warning("control topic not caught up after 15 s; continuing with what was read")

    async def _follow_control(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            got = await consumer.getmany(timeout_ms=500)
            for records in got.values():
                if self._apply_control(records):
                    await self._resume_paused()

    def _apply_control(self, records: list[Any]) -> bool:
        """Apply the API-signed levers among ``records``; a forged one is counted and logged, never
        applied (its dead letter is the guard's, which reads the same topic)."""
        lifted = False
        for r in records:
            lever = read_lever(r.value or b"", self.keyring, f"{r.topic}/{r.partition}@{r.offset}")
            if isinstance(lever, DeadLetter):
                self.stats.refused[f"lever:{lever.reason.value}"] = (
                    self.stats.refused.get(f"lever:{lever.reason.value}", 0) + 1
                )
                log.warning("refused a control message at offset %s: %s", r.offset, lever.message)
                continue
            lifted |= self.control.apply(lever)
        return lifted

    async def _resume_paused(self) -> None:
        """Resume the paused runs whose newest guard stamp is still within the freshness bound; the
        others wait for the guard to issue them again."""
        bound = time.time() - self.settings.decision_max_age_s
        for d in list(self._paused.values()):
            issued = self.journal.issued(d.id)
            if issued is None or issued < bound:
                continue
            if self._paused.pop(d.id, None) is not None:
                await self._handle(d)

    async def _reissued(self, reissue: Decision) -> None:
        """The guard's re-issue of a decision (admitted: signed, current epoch, fresh, never seen):
        resumes the original's paused run under the new stamp, then is spent."""
        original = reissue.id.split(REISSUED, 1)[0]
        issued = self.journal.issued(reissue.id)
        self.journal.finish(reissue.id)
        paused = self._paused.pop(original, None)
        if paused is None:  # that run finished, never paused here, or already resumed
            self.stats.verdicts["reissue_unused"] = self.stats.verdicts.get("reissue_unused", 0) + 1
            return
        if issued is not None:
            self.journal.restamp(original, issued)
        await self._handle(reissue.model_copy(update={"id": original}))

    # --- decisions ------------------------------------------------------------------------------

    def _queue(self, tp: TopicPartition) -> asyncio.Queue[Any]:
        if tp.partition not in self._queues:
            self._queues[tp.partition] = asyncio.Queue()
            self._tasks.append(asyncio.create_task(self._partition(tp, self._queues[tp.partition])))
        return self._queues[tp.partition]

    async def _partition(self, tp: TopicPartition, queue: asyncio.Queue[Any]) -> None:
        """Handle one partition's decisions in order; commit each after its handler returned."""
        while True:
            record = await queue.get()
            s = self.settings
            verdict = admit(
                record.value or b"", self.keyring, self.journal, time.time(), s.decision_max_age_s
            )
            if verdict.decision is None:
                await self._dead_letter(record, tp, verdict.reason, verdict.detail)
            elif REISSUED in verdict.decision.id:
                await self._reissued(verdict.decision)
            else:
                await self._handle(verdict.decision)
            with contextlib.suppress(Exception):  # a rebalance: the next owner resumes from the journal
                await self._consumer.commit({tp: record.offset + 1})
            queue.task_done()

    async def _handle(self, decision: Decision) -> None:
        self.stats.decisions += 1
        self.control.learn(decision)
        try:
            verdict = await asyncio.to_thread(self.handler, decision, self.control)
        except Exception:  # the run is unfinished: kept and handled again, never dropped
            log.exception("handling decision %s failed; it is retried", decision.id)
            verdict = "error"
        self.stats.verdicts[verdict] = self.stats.verdicts.get(verdict, 0) + 1
        if verdict == "paused":
            self._paused[decision.id] = decision
        if verdict not in ("paused", "error"):  # finished: a copy of it is a replay from now on
            self.journal.finish(decision.id)
            self.journal.prune(time.time() - self.settings.decision_max_age_s - 3600)
        self._keep(self.paused_dir, decision, verdict == "paused")
        if verdict == "error":
            attempts = self._retry.get(decision.id, (decision, 0, 0.0))[1] + 1
            wait = min(self.retry_max_s, self.retry_s * 2 ** (attempts - 1))
            self._retry[decision.id] = (decision, attempts, time.monotonic() + wait)
        else:
            self._retry.pop(decision.id, None)
        stage_metrics.ACTUATOR_RETRYING.set(len(self._retry))
        self._keep(self._retry_dir, decision, verdict == "error")

    async def _retry_loop(self, stop: asyncio.Event) -> None:
        """Handle again each decision whose handler raised, once its backoff has passed."""
        while not stop.is_set():
            now = time.monotonic()
            for d, _, due in list(self._retry.values()):
                if due <= now and not stop.is_set():
                    await self._handle(d)
            await asyncio.sleep(0.2)

    @property
    def _retry_dir(self) -> Path | None:
        return None if self.paused_dir is None else self.paused_dir / "retry"

    @staticmethod
    def _keep(folder: Path | None, decision: Decision, keep: bool) -> None:
        """Write (or remove) the decision's file in ``folder``, so a restart still knows it."""
        if folder is None:
            return
        path = folder / f"{hashlib.sha256(decision.id.encode()).hexdigest()[:32]}.json"
        if keep:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(dumps(decision))
        else:
            path.unlink(missing_ok=True)

    def _load_paused(self) -> dict[str, Decision]:
        return {d.id: d for d in self._load(self.paused_dir)}

    @staticmethod
    def _load(folder: Path | None) -> list[Decision]:
        if folder is None or not folder.is_dir():
            return []
        return [Decision.model_validate_json(p.read_bytes()) for p in sorted(folder.glob("*.json"))]

    async def _drain(self) -> None:
        """Let queued decisions finish (their runs are journaled) before stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues.values())), 30.0)

    async def _dead_letter(self, record: Any, tp: TopicPartition, reason: str, detail: str) -> None:
        """A decision that must not act: kept with its reason, counted, never handled."""
        self.stats.dead_letters += 1
        self.stats.refused[reason] = self.stats.refused.get(reason, 0) + 1
        stage_metrics.DEAD_LETTERS.labels(reason=reason).inc()
        log.warning(
            "refused decision at %s/%s@%s: %s (%s)", tp.topic, tp.partition, record.offset, reason, detail
        )
        letter = DeadLetter(
            reason=DeadLetterReason(reason),
            message=f"decision refused: {detail}",
            raw=(record.value or b"").decode("utf-8", "replace"),
            source=f"{tp.topic}/{tp.partition}@{record.offset}",
        )
        await self._producer.send_and_wait(self.settings.topic(DEADLETTER), dumps(letter), key=b"")

    # --- results --------------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        """Called from a workflow thread: produce, and block until the broker has the event."""
        node = str(event.get("node") or "")
        sealed = self.signer.seal(orjson.loads(orjson.dumps(event)), time.time())
        send = self._producer.send_and_wait(
            self.settings.topic(EVENTS), orjson.dumps(sealed), key=node.encode()
        )
        asyncio.run_coroutine_threadsafe(send, self._loop).result(timeout=60)
        self.stats.events += 1
