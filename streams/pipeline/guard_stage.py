"""The guard stage: one partition, one writer, turning proposals into decisions.

Where it sits: ``breakfix.proposals`` (one partition, written by every node-stage worker) and
``breakfix.control`` → here → ``breakfix.decisions`` (back to the node's partition). The topic has one
partition and the stage's consumer group gives it to exactly one member, so two workers never act as
the guard at once; its state (the engine's GuardState, the watermark's progress, the proposal ids it
has decided, and decisions not yet confirmed sent) is one value in a changelogged table.

Crash safety: proposals are acknowledged only after the decisions made from them are in the table's
outbox and sent; a restarted guard re-reads unacknowledged proposals, drops those it has decided (by
id) and re-sends its outbox, so no decision is lost and none is made twice. The one window for a
duplicate *message* (same decision id) is a crash between the broker confirming a decision and the
outbox being cleared; consumers dedupe by decision id, the documented idempotency key.
"""

from __future__ import annotations

import base64
import zlib
from collections import deque
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from policy.levers import lifts
from schemas.control import ControlMessage
from schemas.decision import REISSUED, Decision
from schemas.proposal import OperatorProposal, Proposal
from schemas.signing import Signer
from streams.pipeline.input_offsets import InputOffsets
from streams.pipeline.node_stage import stored_dict
from streams.pipeline.watermark import OrderKey, Watermark

_SEEN = 100_000
"""Decided proposal ids kept for deduplication (proposals are a handful per hour on a large fleet)."""


def progress_body(bounds: dict[int, OrderKey]) -> bytes:
    """One progress message for all of a worker's partitions that moved since its last one: one
    message per progress tick instead of one per partition (twelve times fewer for the guard to read)."""
    return orjson.dumps({"bounds": {str(p): list(k) for p, k in bounds.items()}})


def read_progress(body: bytes) -> dict[int, OrderKey]:
    """Partition → bound of a progress message; also reads the one-partition form that workers wrote
    before (``{"partition": p, "bound": k}``), which a guard may re-read after an upgrade."""
    mark = orjson.loads(body)
    raw = mark["bounds"] if "bounds" in mark else {mark["partition"]: mark["bound"]}
    return {int(p): (float(t), str(n), int(s)) for p, (t, n, s) in raw.items()}


class GuardEngine(Protocol):
    def new_guard(self) -> Any: ...

    def guard_step(self, g: Any, item: Any) -> list[Decision]: ...


def sealed(signer: Signer, decision: Decision, epoch: int, now: float) -> bytes:
    """The decision as sent: signed by the guard with its wall-clock issue time and epoch."""
    return orjson.dumps(signer.seal(decision.model_dump(mode="json"), now, epoch))


def safe(decision: Decision, replay: bool) -> Decision:
    """Decisions made from replayed input are marked replay and never executable, whatever the policy."""
    if replay and (decision.executable or not decision.replay):
        return decision.model_copy(update={"replay": True, "executable": False})
    return decision


class GuardStage:
    """The guard's state and ordering, without Kafka: the shell feeds it bytes and sends its decisions."""

    def __init__(
        self,
        engine: GuardEngine,
        guard_to_bytes: Any,
        guard_from_bytes: Any,
        item_models: dict[str, type[BaseModel]],
        partitions: int,
        max_wait_s: float,
    ) -> None:
        self.engine = engine
        self.guard_to_bytes = guard_to_bytes
        self.guard_from_bytes = guard_from_bytes
        self.item_models = item_models
        self.g = engine.new_guard()
        self.watermark: Watermark[tuple[str, Any]] = Watermark(partitions, max_wait_s)
        self.seen: deque[str] = deque(maxlen=_SEEN)
        self._seen: set[str] = set()
        self.outbox: list[Decision] = []
        self.node_partition: dict[str, int] = {}
        self.inputs = InputOffsets()
        """Next offset of each input topic (streams.pipeline.input_offsets): what a restart must read from."""
        self.epoch = 0
        """The guard's fencing token: raised each time a worker takes the guard over (one more than the
        snapshot's, and at least the takeover's wall-clock milliseconds), sealed into every decision; the
        actuator stage refuses a decision from an epoch older than the newest it has seen, so a replaced
        guard cannot still issue."""
        self.in_flight: dict[str, Decision] = {}
        """Node → the executable decision last issued for it, until the guard decides for that node
        again: a run a lever may have paused. When a lever lifts, each is issued again with a new
        stamp (:data:`REISSUED`), so a paused run resumes only under a guard stamp younger than the
        actuator stage's freshness bound."""
        self.held_at: dict[str, int] = {}
        """Proposal offsets of the items the watermark holds: they are not in the snapshot, so the
        snapshot's proposals offset stays at the oldest of them."""

    def on_progress(self, partition: int, bound: OrderKey) -> None:
        self.watermark.mark(partition, bound)

    def on_item(
        self,
        kind: str,
        key: OrderKey,
        item_id: str,
        body: bytes,
        partition: int,
        wall: float,
        offset: int | None = None,
    ) -> bool:
        """Hold a proposal or registration (read at ``offset`` of the proposals topic) for ordered
        release; False when it needs no processing."""
        if item_id in self._seen:
            return False
        model = self.item_models[kind]
        item = model.model_validate_json(body)
        self.node_partition[str(getattr(item, "node", ""))] = partition
        held = self.watermark.push(key, item_id, (item_id, item), wall)
        if held and offset is not None:
            self.held_at[item_id] = offset
        return held

    def release(self, wall: float) -> list[str]:
        """Decide every item the watermark lets through; returns their ids (the shell acks them)."""
        done = []
        for item_id, item in self.watermark.release(wall):
            done.append(item_id)
            self.held_at.pop(item_id, None)
            if item_id in self._seen:
                continue
            replay = bool(getattr(item, "replay", False)) and isinstance(item, Proposal)
            self._issue([safe(d, replay) for d in self.engine.guard_step(self.g, item)])
            self._remember(item_id)
        return done

    def on_control(self, msg: ControlMessage) -> None:
        if msg.id in self._seen:
            return
        self._issue(self.engine.guard_step(self.g, msg))
        if lifts(msg):
            self.outbox.extend(
                d.model_copy(
                    update={
                        "id": f"{d.id}{REISSUED}{msg.id}",
                        "reasons": [*d.reasons, f"issued again: lever {msg.key} lifted ({msg.id})"],
                    }
                )
                for d in self.in_flight.values()
            )
        self._remember(msg.id)

    def on_operator(self, op: OperatorProposal) -> None:
        """An operator plan's step the shell found signed by the API: decided at once, in the order
        of its position in the topic (a person's request, not event-time telemetry the watermark
        orders)."""
        if op.id in self._seen:
            return
        self._issue(self.engine.guard_step(self.g, op))
        self._remember(op.id)

    def _issue(self, decisions: list[Decision]) -> None:
        """Queue decisions to send; the latest per node is in flight while it is executable."""
        for d in decisions:
            if d.executable and not d.replay:
                self.in_flight[d.node] = d
            else:
                self.in_flight.pop(d.node, None)
        self.outbox.extend(decisions)

    def _remember(self, item_id: str) -> None:
        if len(self.seen) == self.seen.maxlen:
            self._seen.discard(self.seen[0])
        self.seen.append(item_id)
        self._seen.add(item_id)

    def snapshot(self) -> bytes:
        """One changelog value, zlib-compressed inside a JSON wrapper (recovery decodes JSON whatever
        the serializer says): uncompressed, a 10,000-node fleet's placements, registration ids and
        partition map passed the broker's 1 MB message limit and crashed the worker."""
        inner = orjson.dumps(
            {
                "guard": base64.b64encode(self.guard_to_bytes(self.g)).decode(),
                "watermark": self.watermark.to_dict(),
                "seen": list(self.seen),
                "outbox": [d.model_dump(mode="json") for d in self.outbox],
                "node_partition": self.node_partition,
                "inputs": self._resume_offsets(),
                "epoch": self.epoch,
                "in_flight": [d.model_dump(mode="json") for d in self.in_flight.values()],
            }
        )
        return orjson.dumps({"z": base64.b64encode(zlib.compress(inner, 1)).decode()})

    def _resume_offsets(self) -> dict[str, int]:
        """Input offsets the snapshot covers: held proposals are re-read after a restart."""
        out = self.inputs.to_dict()
        if self.held_at:
            out["proposals"] = min(self.held_at.values())
        return out

    def restore(self, value: bytes | dict[str, Any]) -> None:
        d = stored_dict(value)
        if "z" in d:  # values written before compression have the fields at the top level
            d = orjson.loads(zlib.decompress(base64.b64decode(d["z"])))
        self.g = self.guard_from_bytes(base64.b64decode(d["guard"]))
        self.watermark.restore(d["watermark"])
        self.seen.clear()
        self._seen.clear()
        for i in d["seen"]:
            self._remember(i)
        self.outbox = [Decision.model_validate(x) for x in d["outbox"]]
        self.node_partition = {str(k): int(v) for k, v in d["node_partition"].items()}
        self.epoch = int(d.get("epoch", 0))
        flying = (Decision.model_validate(x) for x in d.get("in_flight", []))  # absent in older snapshots
        self.in_flight = {x.node: x for x in flying}
        self.inputs = InputOffsets(d.get("inputs"))  # absent before offsets were kept: checked from then
