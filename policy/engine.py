"""The one implementation of the pipeline's logic, shared by offline replay and the streaming shell.

Node stage: ``node_step`` (validate context → detect → lifecycle → at most one proposal) over a
``NodeRuntime``; guard stage: ``guard_step`` over a ``GuardState``; decisions flow back through
``apply_decision``. Time is always event time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from detectors.capacity import lost_gpus
from detectors.catalog import Catalog
from detectors.fusion import FusionConfig, fuse
from detectors.state import DetectState
from detectors.step import add_lemon, detect, lemon_score, tick
from policy import guard_record, node_record
from policy.guard import Guard, GuardState
from policy.lifecycle import (
    Draft,
    Life,
    apply,
    evaluate,
    on_action_result,
    on_repair_status,
    on_tenant_report,
    renewal_due,
)
from policy.model import Policy
from schemas.control import ControlMessage
from schemas.deadletter import DeadLetterReason
from schemas.decision import Decision
from schemas.events import ActionResult, ChangeEvent, Envelope, NodeInventory, RepairStatus, TenantReport
from schemas.evidence import Evidence
from schemas.gate import GateConfig, NodeGate, Rejection, check_event
from schemas.proposal import OperatorProposal, Placement, Proposal, Registration
from schemas.vocab import Attribution, FailureClass, Trigger


@dataclass
class NodeRuntime:
    """All the node stage keeps for one node."""

    node: str
    gate: NodeGate = field(default_factory=NodeGate)
    det: DetectState = field(init=False)
    life: Life = field(default_factory=Life)
    placement: Placement | None = None
    next_tick: float = 0.0

    def __post_init__(self) -> None:
        self.det = DetectState(self.node)

    @property
    def pending(self) -> bool:
        return self.life.pending is not None

    def to_bytes(self) -> bytes:
        """The node's checkpoint record (``policy.node_record``: values only, a few KB)."""
        return node_record.encode((self.node, self.gate, self.det, self.life, self.placement, self.next_tick))

    @staticmethod
    def from_bytes(b: bytes) -> NodeRuntime:
        """A runtime from its record, in the current format or the plain pickle written before it."""
        node, gate, det, life, placement, next_tick = node_record.decode(b)
        rt = NodeRuntime(node, gate, life, placement, next_tick)
        rt.det = det
        return rt


def guard_to_bytes(g: GuardState) -> bytes:
    """The guard's state record (``policy.guard_record``: values only, 0.2-0.4x the plain pickle)."""
    return guard_record.encode(g)


def guard_from_bytes(b: bytes) -> GuardState:
    """The guard's state from its record, in the current format or the plain pickle written before it."""
    return guard_record.decode(b)


@dataclass
class NodeStep:
    runtime: NodeRuntime | None
    evidence: list[Evidence] = field(default_factory=list)
    proposals: list[Proposal | Registration] = field(default_factory=list)
    rejection: Rejection | None = None


class Engine:
    def __init__(self, policy: Policy, gate: GateConfig | None = None) -> None:
        self.policy = policy
        self.gate_cfg = gate or GateConfig()
        self.fusion: FusionConfig = policy.fusion_config()
        self.guard = Guard(policy)
        self._catalogs: dict[tuple[str, str], Catalog] = {}

    def catalog(self, rt: NodeRuntime) -> Catalog:
        key = (rt.det.pool, rt.det.sku)
        cat = self._catalogs.get(key)
        if cat is None:
            cat = self._catalogs[key] = self.policy.catalog_for(*key)
        return cat

    # --- node stage -------------------------------------------------------------------------

    def node_step(self, rt: NodeRuntime | None, event: Envelope, now: float) -> NodeStep:
        assert event.node is not None, "node-less events go through fleet_step"
        if rt is None and isinstance(event, NodeInventory):
            fresh = NodeRuntime(event.node)
            verdict = check_event(fresh.gate, event, now, self.gate_cfg)
            if verdict is not None:
                return NodeStep(None, rejection=verdict)
            rt = fresh
        else:
            verdict = check_event(rt.gate if rt else None, event, now, self.gate_cfg)
            if verdict is not None or rt is None:
                return NodeStep(rt, rejection=verdict or (DeadLetterReason.UNKNOWN_NODE, "unknown node"))
        t = event.time.timestamp()
        step = NodeStep(rt)
        step.evidence = detect(rt.det, event, self.catalog(rt), t)
        if isinstance(event, NodeInventory):
            placement = Placement(
                pool=event.data.pool,
                rack=event.data.rack,
                sku=event.data.sku,
                gpus=event.data.gpus,
                labels=dict(event.data.labels),
            )
            if placement != rt.placement:
                rt.placement = placement
                step.proposals.append(
                    Registration(node=rt.node, time=event.time, placement=placement, replay=event.replay)
                )
            return step
        if rt.placement is None or rt.pending:
            return step
        draft: Draft | None = None
        if isinstance(event, TenantReport):
            draft = on_tenant_report(rt.life, event, self.policy, t)
        elif isinstance(event, RepairStatus):
            draft = on_repair_status(rt.life, event, t)
        elif isinstance(event, ActionResult):
            draft = on_action_result(rt.life, event, t)
        if draft is None:
            draft = self._evaluate(rt, t, force=False)
        if draft is not None:
            step.proposals.append(self._propose(rt, draft, event.id, event.time, event.replay))
        return step

    def _evaluate(self, rt: NodeRuntime, now: float, force: bool) -> Draft | None:
        due = now >= rt.next_tick
        if due:
            rt.next_tick = now + self.policy.tick_s
        if not (rt.det.dirty or due or force or renewal_due(rt.life, self.policy, now)):
            return None
        assessments = fuse(rt.det, now, self.fusion)
        lemon = lemon_score(rt.det, now, self.policy.thresholds.lemon_half_life_s)
        return evaluate(rt.life, assessments, self.policy, lemon, now)

    def tick(self, rt: NodeRuntime, now: float) -> NodeStep:
        """The clock passed with no event for this node: silence checks and time-driven transitions."""
        step = NodeStep(rt)
        if rt.placement is None or rt.pending or now < rt.next_tick:
            return step
        step.evidence = tick(rt.det, self.catalog(rt), now)
        draft = self._evaluate(rt, now, force=True)
        if draft is not None:
            when = datetime.fromtimestamp(now, UTC)
            step.proposals.append(self._propose(rt, draft, f"tick{int(now)}", when, False))
        return step

    def fleet_step(self, runtimes: dict[str, NodeRuntime], event: Envelope, now: float) -> list[NodeStep]:
        """Node-less events: a pool-wide change is noted on every node it touches."""
        if isinstance(event, ChangeEvent):
            for rt in runtimes.values():
                detect(rt.det, event, self.catalog(rt), now)
        return []

    def _propose(self, rt: NodeRuntime, d: Draft, event_id: str, when: datetime, replay: bool) -> Proposal:
        assert rt.placement is not None
        pid = f"{rt.node}:{_short(event_id)}:{d.trigger}"
        rt.life.pending = pid
        return Proposal(
            id=pid,
            time=when,
            node=rt.node,
            gpu=d.gpu,
            from_state=rt.life.state,
            to_state=d.to_state,
            trigger=d.trigger,
            failure_class=d.failure_class,
            domain=d.domain,
            confidence=min(1.0, max(0.0, d.confidence)),
            action=d.action,
            reasons=list(d.reasons),
            evidence=list(d.evidence),
            evidence_time=datetime.fromtimestamp(d.evidence_time, UTC),
            placement=rt.placement,
            job=d.job,
            signal=d.signal,
            decisive=d.decisive,
            lost_gpus=lost_gpus(rt.det, rt.placement.gpus, when.timestamp()),
            replay=replay,
        )

    def apply_decision(self, rt: NodeRuntime, decision: Decision) -> NodeStep:
        t = decision.time.timestamp()
        apply(rt.life, decision, t)
        if decision.trigger == Trigger.REPAIR_COMPLETED and not decision.held:
            add_lemon(rt.det, decision.gpu, t, self.policy.thresholds.lemon_half_life_s)
            self._forget_repaired(rt, decision)
        return NodeStep(rt)

    @staticmethod
    def _forget_repaired(rt: NodeRuntime, decision: Decision) -> None:
        """A completed repair resets what it repaired; a persisting fault returns as new evidence. A
        tenant's report stays unless the repair was of that report (the repair system's playbook
        validated the machine and released it Completed, which clears the report on NICo too)."""
        repaired_report = decision.failure_class == FailureClass.TENANT_REPORT
        keep = {
            k: s
            for k, s in rt.det.slots.items()
            if (s.attribution == Attribution.TENANT and not repaired_report)
            or (decision.gpu is not None and s.gpu not in (None, decision.gpu))
        }
        rt.det.slots = keep
        rt.det.dirty = True

    # --- guard stage ------------------------------------------------------------------------

    def new_guard(self) -> GuardState:
        return GuardState()

    def guard_step(
        self, g: GuardState, item: Proposal | Registration | ControlMessage | OperatorProposal
    ) -> list[Decision]:
        return self.guard.step(g, item)


_ID_KEEP = 48


def _short(event_id: str) -> str:
    """The event id as it goes into a proposal id, bounded: an action result's id embeds the decision
    id it answers, so proposal -> decision -> result -> proposal would nest ids without end (ids are
    capped at 200 characters by the contract). A long id becomes a stable digest, the same offline
    and streaming."""
    if len(event_id) <= _ID_KEEP:
        return event_id
    return "h" + hashlib.blake2b(event_id.encode(), digest_size=12).hexdigest()
