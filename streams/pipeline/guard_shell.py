"""The guard stage's streaming runtime: when to decide, persist, send and acknowledge, over ports.

:class:`streams.pipeline.guard_stage.GuardStage` (no I/O) orders proposals by the watermark and decides;
:class:`GuardShell` moves its input and output through :class:`streams.pipeline.ports.Ports`:

* input is applied as it arrives; a proposal is acknowledged only once the decisions made from it
  are in the persisted outbox and sent (:meth:`checkpoint`), a control message's effect is
  persisted at once, progress marks and dropped items with the next snapshot;
* the snapshot (fleet state, dedup ids, outbox) is written when there are decisions to send or a
  control message arrived, else every ``checkpoint_s``; decisions leave after it, and a small
  "sent" record confirms them, so a restarted guard re-sends only what was not confirmed.

Lifecycle: :meth:`assigned` (restore, or learn where the inputs start; drop outbox decisions already
on the decisions topic; re-send the rest), :meth:`input`, :meth:`checkpoint`, :meth:`timer` (release
what the watermark's wait lets through), :meth:`revoked`. The caller serialises the calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.control import ControlMessage
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.parse import dead_letter
from schemas.proposal import OperatorProposal
from schemas.recording import dumps
from schemas.signing import Keyring, Signer
from schemas.topics import Topic
from streams import metrics as stage_metrics
from streams.pipeline.guard_stage import GuardStage, read_progress, sealed
from streams.pipeline.node_stage import REFUSED as STATE_REFUSED
from streams.pipeline.node_stage import stored_dict
from streams.pipeline.ports import Ports
from streams.signed_input import read_lever, read_operator

log = logging.getLogger(__name__)

GUARD_KEY = "guard"
"""Table key of the guard's snapshot."""
OPERATOR = "operator"
"""``breakfix-kind`` of an operator plan's step on the proposals topic (the API writes it, signed)."""
SENT_KEY = "guard-sent"
"""Ids of the last outbox confirmed sent: a small record instead of a second full snapshot per
decision batch (the snapshot of a 10,000-node guard is ~170 KB and ~50 ms to encode)."""


class GuardShell:
    """The guard stage on the worker that holds ``breakfix.proposals`` partition 0 (one at a time)."""

    def __init__(
        self,
        new_stage: Callable[[], GuardStage],
        ports: Ports,
        topics: dict[str, str],
        checkpoint_s: float,
        signer: Signer | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        """``signer``: the guard's key, sealing every decision sent; ``keyring``: the keys levers must
        be signed with (in-memory test pipelines, which reach no actuator, run without either)."""
        self.signer = signer
        self.keyring = keyring
        self.new_stage = new_stage
        self.ports = ports
        self.topics = topics
        self.control_topic = topics[Topic.CONTROL]
        self.proposals_topic = topics[Topic.PROPOSALS]
        self.checkpoint_s = checkpoint_s
        self.stage = new_stage()
        self.on = False
        """True from :meth:`assigned` until :meth:`revoked`: this worker is the guard."""
        self.held: dict[str, list[Any]] = defaultdict(list)
        """Input events of the items the watermark holds, by item id: acknowledged once decided."""
        self.marks: list[Any] = []
        """Input with nothing to decide (progress, control, dropped items): acknowledged next time."""
        self.acks: list[Any] = []
        """Guard input whose effect is in memory but not yet in the table: acknowledged after the next
        snapshot (a decision forces one at once; otherwise every ``checkpoint_s``)."""
        self.saved_at = 0.0
        self.letters: list[DeadLetter] = []
        """Refused levers, sent to the dead-letter topic with the next checkpoint."""

    # --- lifecycle ----------------------------------------------------------------------------

    async def assigned(self) -> None:
        """This worker just got the guard partition: restore, and drop from the outbox what a crash
        left sent but unconfirmed; the rest leaves with the first checkpoint (the input that follows:
        a table write needs an input event's partition)."""
        self.stage = self.new_stage()
        stored = self.ports.table.get(GUARD_KEY)
        if stored is not None:
            try:
                self.stage.restore(stored)
            except STATE_REFUSED as e:
                # Refused, never executed: the guard starts empty and reads its inputs back from
                # their log start, as a guard that never wrote a snapshot does.
                log.error("the guard's stored state record was refused (%s); its state is rebuilt "
                          "from the proposals and control topics' retained records", e)  # fmt: skip
                stage_metrics.STATE_REFUSED.labels(stage="guard").inc()
                self.stage = self.new_stage()
                stored = None
        g = self.stage
        if stored is not None:
            confirmed = self.ports.table.get(SENT_KEY)
            done = set(stored_dict(confirmed)["sent"]) if confirmed is not None else set()
            g.outbox = [d for d in g.outbox if d.id not in done]
            sent = await self.ports.log.sent_decision_ids({g.node_partition.get(d.node) for d in g.outbox})
            g.outbox = [d for d in g.outbox if d.id not in sent]
        else:
            tps = {"proposals": (self.proposals_topic, 0), "control": (self.control_topic, 0)}
            for role, offset in (await self.ports.log.log_starts(tps)).items():
                g.inputs.start(role, offset)
        # This worker now issues; its predecessor's epoch is fenced off. The wall clock (ms) keeps the
        # epoch rising even when the guard's state was rebuilt from its input and lost the stored one.
        g.epoch = max(g.epoch + 1, int(time.time() * 1000))
        self.held.clear()
        self.marks.clear()
        self.acks.clear()
        self.on = True
        await self.checkpoint(None, persist=False)

    def revoked(self) -> None:
        """Another worker becomes the guard; it re-reads what this one did not acknowledge."""
        self.on = False
        self.held.clear()
        self.marks.clear()
        self.acks.clear()

    async def input(self, event: Any) -> None:
        """Apply one delivered record (after what the stream skipped before it), then release what
        the watermark lets through and persist when there is something to persist."""
        msg = event.message
        if not self.on:
            await self.assigned()
        role = "control" if msg.topic == self.control_topic else "proposals"
        control = False
        skipped = self.stage.inputs.admit(role, msg.offset)
        if skipped is not None:
            self.stage.inputs.applied(role, msg.offset)
            for r in await self.ports.log.read_skipped("guard", msg, skipped):
                control = self._apply(r.topic, r.headers, r.value, r.offset, None) or control
        control = self._apply(msg.topic, msg.headers, msg.value, msg.offset, event) or control
        await self.checkpoint(event, persist=control)

    async def checkpoint(self, context: Any, persist: bool) -> None:
        """Decide what the watermark releases; persist state + outbox, send it, then acknowledge.

        The snapshot (fleet state, dedup ids, outbox) is written at once when there are decisions to
        send or a control message arrived, else every ``checkpoint_s``: one snapshot per released
        registration batch was quadratic in fleet size and made the guard the slowest hop."""
        g = self.stage
        wall = self.ports.clock()
        done = g.release(wall)
        self.acks.extend(ev for i in done for ev in self.held.pop(i, []))
        self.acks.extend(self.marks)
        self.marks.clear()
        context = context if context is not None else (self.acks[-1] if self.acks else None)
        periodic = bool(self.acks) and wall - self.saved_at >= self.checkpoint_s
        if not (persist or g.outbox or periodic) or context is None:
            return
        self.saved_at = wall
        await self.ports.table.write([(context, [(GUARD_KEY, g.snapshot())])])
        outbox, g.outbox = g.outbox, []
        letters, self.letters = self.letters, []
        futs = [await self.ports.out.send(Topic.DEADLETTER, b"", dumps(x), None) for x in letters]
        now = time.time()
        for d in outbox:
            stage_metrics.observe_decision(d)
            p = g.node_partition.get(d.node)
            value = sealed(self.signer, d, g.epoch, now) if self.signer is not None else dumps(d)
            futs.append(await self.ports.out.send(Topic.DECISIONS, d.node.encode(), value, p))
        await asyncio.gather(*futs)
        if outbox:  # confirmed sent: a restart drops these from the persisted outbox
            sent_ids = orjson.dumps({"sent": [d.id for d in outbox]})
            await self.ports.table.write([(context, [(SENT_KEY, sent_ids)])])
        acks = list(self.acks)
        self.acks.clear()
        for ev in acks:
            await self.ports.commit.ack(ev)

    async def timer(self) -> None:
        """Every progress interval: release what has waited long enough for the slowest partition."""
        if len(self.stage.watermark) or self.acks:
            context = next((evs[-1] for evs in self.held.values() if evs), None)
            await self.checkpoint(context, persist=False)

    # --- steps --------------------------------------------------------------------------------

    def _apply(self, topic: str, raw_headers: Any, value: bytes, offset: int, event: Any) -> bool:
        """Apply one guard input (``event`` is None for one read back from the log: nothing of it to
        acknowledge); True for a control message, whose effect is written at once."""
        headers = {k: bytes(v) for k, v in (raw_headers or [])}
        kind = headers.get("breakfix-kind", b"").decode()
        to_ack = self.marks if event is not None else []
        if topic == self.control_topic:
            source = f"{topic}/0@{offset}"
            if self.keyring is not None:
                lever: ControlMessage | DeadLetter = read_lever(value, self.keyring, source)
            else:
                try:
                    lever = ControlMessage.model_validate_json(value)
                except ValidationError as err:
                    lever = dead_letter(value, DeadLetterReason.INVALID_VALUE, f"lever: {err}", source)
            if isinstance(lever, DeadLetter):  # never applied, nor fatal: kept with its reason
                log.warning("refused a control message at offset %s: %s", offset, lever.message)
                stage_metrics.DEAD_LETTERS.labels(reason=lever.reason.value).inc()
                self.letters.append(lever)
                to_ack.append(event)
                return True  # the dead letter leaves with this checkpoint
            self.stage.on_control(lever)
            to_ack.append(event)
            return True
        if kind == OPERATOR:
            return self._operator(value, f"{topic}/0@{offset}", to_ack, event)
        if kind == "progress":
            for part, bound in read_progress(value).items():
                self.stage.on_progress(part, bound)
            to_ack.append(event)
            return False
        t, n, s = orjson.loads(headers["breakfix-order"])
        item_id = headers["breakfix-id"].decode()
        p = int(headers["breakfix-partition"])
        key = (float(t), str(n), int(s))
        if not self.stage.on_item(kind, key, item_id, value, p, self.ports.clock(), offset):
            to_ack.append(event)
        elif event is not None:
            self.held[item_id].append(event)
        return False

    def _operator(self, value: bytes, source: str, to_ack: list[Any], event: Any) -> bool:
        """Judge an operator plan's step at once when the API signed it recently; otherwise keep its
        dead letter with the reason, and nothing is decided. A guard without a keyring (in-memory
        test pipelines) refuses every one: it cannot tell who sent it."""
        to_ack.append(event)
        if self.keyring is None:
            found: OperatorProposal | DeadLetter = dead_letter(
                value, DeadLetterReason.UNSIGNED, "operator plan: this guard verifies no signature", source
            )
        else:
            found = read_operator(value, self.keyring, source)
        if isinstance(found, DeadLetter):
            log.warning("refused an operator plan step at %s: %s", source, found.message)
            stage_metrics.DEAD_LETTERS.labels(reason=found.reason.value).inc()
            self.letters.append(found)
        else:
            self.stage.on_operator(found)
        return True  # its decision (or dead letter) leaves with this checkpoint
