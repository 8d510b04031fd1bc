"""The guard: the single writer that turns proposals into decisions under every guardrail.

Fleet-wide state (placement and state of every node, in-flight slots, breaker window, incidents,
kill switches, modes, approvals) lives here and only here, so "one node per rack" can never be
granted twice. Time is the guard's clock: the newest proposal or control time it has seen. That clock
never retires a queued proposal by itself (it moves with other nodes' input, so its verdict would reach
a streaming node at another point of that node's input than an offline one): a queued proposal older
than the stale cutoff is only never released, and its node renews or withdraws it on its own time.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from policy import levers
from policy.fleet_counts import FleetCounts
from policy.guardrails import capacity_only
from policy.headroom import pool_headroom
from policy.levers import Levers
from policy.lifecycle import EXPIRED, IN_FLIGHT, JOB_FAULT
from policy.model import Policy
from schemas.common import NodeState
from schemas.control import ControlMessage
from schemas.decision import ActionKind, Decision, GuardCheck, GuardFigure, Mode
from schemas.proposal import OperatorProposal, Placement, Proposal, Registration
from schemas.vocab import QUARANTINE_TRIGGERS, FailureClass, Trigger

Q, E, H, S = NodeState.QUARANTINED, NodeState.ESCALATED, NodeState.HEALTHY, NodeState.SUSPECT
V = NodeState.VALIDATING
MUTATING = frozenset(
    {
        ActionKind.GPU_RESET,
        ActionKind.REBOOT,
        ActionKind.DRAIN,
        ActionKind.REIMAGE,
        ActionKind.RMA,
        ActionKind.RETURN_TO_SERVICE,
        ActionKind.VALIDATE,
        ActionKind.TICKET,
        ActionKind.ROLLBACK_CHANGE,
    }
)
MAX_SEEN = 50_000
CHANGE_CLASS = FailureClass.CHANGE_REGRESSION


@dataclass
class NodeInfo:
    placement: Placement
    state: NodeState = H


@dataclass
class GuardState:
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    clock: float = 0.0
    levers: Levers = field(default_factory=Levers)
    """The operator's levers from the control topic, applied in log order."""
    breaker_open: bool = False
    quarantines: deque[float] = field(default_factory=deque)
    executions: deque[float] = field(default_factory=deque)
    backlog: list[Proposal] = field(default_factory=list)
    waiting: list[Proposal] = field(default_factory=list)
    wait_started: dict[str, tuple[float, float]] = field(default_factory=dict)
    """node → (when its current wait for capacity began, when it last asked): a node that renews its
    queued proposal, or asks again soon after withdrawing it, keeps waiting from the first ask, so
    ``max_wait_s`` still bites."""
    incidents: dict[str, tuple[str, float]] = field(default_factory=dict)
    """frozen scope key → (incident id, frozen until)."""
    blast: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    lost: dict[str, int] = field(default_factory=dict)
    """node → GPUs it had lost on its own (NotReady, fallen off the bus) at its last proposal; only
    nodes with some. Headroom counts them as removed while the node is in service."""
    running: dict[str, str] = field(default_factory=dict)
    """node → id of the executable decision it was last given, until the guard decides for the node
    again (the run's results move the node, and each move is a decision): an operator plan step for
    a node with a run in flight is refused (``in_flight``), so two runs never act on one node."""
    operator_waiting: list[OperatorProposal] = field(default_factory=list)
    """Operator plan steps refused for capacity alone (held), in arrival order: each is judged again
    whenever a proposal may have freed a slot, and released (``d-<step>:released``) once it passes,
    or retired (``:capacity_wait_expired``) after ``max_wait_s`` of the guard's clock."""
    parked: set[str] = field(default_factory=set)
    """Nodes Quarantined for a ticket: waiting on a person (a hardware ticket, a tenant's repair
    report), with no repair of the product's running. They hold their slot against every fault but a
    decisive one (see ``Guard._not_holding``)."""
    counts: FleetCounts | None = field(default=None, compare=False, repr=False)
    """Capacity figures of ``nodes``, derived (never stored): counted once when first needed, then
    kept up to date by the guard as it registers nodes and moves their state. ``nodes`` is changed
    only through :class:`Guard` (or ``counts`` reset to None)."""


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def decision_id(p: Proposal) -> str:
    """The id of the decision the guard records when it first judges ``p`` (held or not). An operator
    approves ``decision:<that id>``, so the approval still counts when a held proposal is released
    (whose decision is then ``<that id>:released``)."""
    return "d-" + p.id


def _family(p: Proposal, decisive: bool | None = None) -> str:
    """What a blast-radius count and freeze compare: class, strongest signal and strength."""
    strong = p.decisive if decisive is None else decisive
    return f"{p.failure_class}:{p.signal or '-'}:{'decisive' if strong else 'corroborated'}"


def _scopes(p: Placement, job: str | None) -> dict[str, str]:
    out = {"rack": p.rack, "pool": p.pool, "sku": p.sku}
    leaf = p.labels.get("network.leaf")
    if leaf:
        out["leaf"] = leaf
    if job:
        out["job"] = job
    return out


class Guard:
    """Stateless over ``GuardState``: ``step`` mutates the state it is given and returns decisions."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    # --- inputs -----------------------------------------------------------------------------

    def step(
        self, g: GuardState, item: Proposal | Registration | ControlMessage | OperatorProposal
    ) -> list[Decision]:
        if isinstance(item, OperatorProposal):
            return self._operator(g, item)
        if isinstance(item, Registration):
            info = g.nodes.get(item.node)
            if info is None:
                self._add_node(g, item.node, item.placement)
            else:
                if g.counts is not None:
                    g.counts.replace(info.placement, item.placement, info.state)
                info.placement = item.placement
            return []
        if isinstance(item, ControlMessage):
            return self._control(g, item)
        return self._proposal(g, item)

    def _control(self, g: GuardState, m: ControlMessage) -> list[Decision]:
        reset = levers.apply(g.levers, m).reset
        if reset is not None:
            g.breaker_open = False
            g.quarantines.clear()
            backlog, g.backlog = g.backlog, []
            if reset.backlog == "resume":
                return [d for p in backlog for d in self._release(g, p, "released after breaker reset")]
            return [
                self._plain(
                    g,
                    p,
                    p.from_state,
                    Trigger.BACKLOG_DISCARDED,
                    ActionKind.NONE,
                    [f"breaker reset by {m.actor} with --discard-backlog"],
                    [],
                    g.clock,
                )
                for p in backlog
                if g.nodes[p.node].state is p.from_state
            ]
        return []

    # --- proposals --------------------------------------------------------------------------

    def _proposal(self, g: GuardState, p: Proposal) -> list[Decision]:
        if p.id in g.seen:
            return []  # a re-delivered proposal: its decision was already made
        g.seen[p.id] = None
        if len(g.seen) > MAX_SEEN:
            g.seen.popitem(last=False)
        g.clock = max(g.clock, p.time.timestamp())
        info = g.nodes.get(p.node) or self._add_node(g, p.node, p.placement)
        if p.lost_gpus:
            g.lost[p.node] = p.lost_gpus
        else:
            g.lost.pop(p.node, None)
        queued = self._unqueue(g, p.node, p.time.timestamp())
        if p.trigger == EXPIRED:
            # A withdrawal whose queued proposal is already gone was overtaken by a decision (release,
            # escalation, discard) that is on its way to the node and answers it.
            return [] if queued is None else [self._expire(g, queued, p), *self._drain_waiting(g)]
        out: list[Decision] = []
        if p.trigger == JOB_FAULT:
            out.append(self._job_fault(g, p))
            out.extend(self._drain_waiting(g))
            return out
        if p.failure_class == CHANGE_CLASS and p.to_state is not Q:
            out.append(self._change(g, p))
            self._track(g, out[-1])
            out.extend(self._drain_waiting(g))
            return out
        incident = self._blast(g, p)
        if p.to_state is Q:
            out.append(self._quarantine(g, p, info, incident))
        else:
            out.append(self._decide(g, p, self._basic_checks(g, p), p.time.timestamp(), decision_id(p)))
        self._track(g, out[-1])
        if incident is not None:
            out.append(self._incident_decision(g, p, incident, info.state))
        out.extend(self._drain_waiting(g))
        return out

    def _operator(self, g: GuardState, op: OperatorProposal) -> list[Decision]:
        """One node's step of an approved operator repair plan (the API signed it; the shell checked).

        Judged like a proposal: kill switch, exclusion, rate limit and the pool's headroom, and
        concurrency when it takes a serving node out (a node already out of service holds its slot).
        The plan's approvals stand for the class's mode and for the approval check; the node's state
        is the guard's own record, never the API's view. Refused for capacity alone, the step waits in
        the guard's queue as automatic proposals do (a held decision naming what holds its slot) and
        is released when a slot frees; refused for anything else, the node stays where it is. The
        guard's clock does not move: the message carries the API's wall time, not event time."""
        if op.id in g.seen:
            return []
        g.seen[op.id] = None
        if len(g.seen) > MAX_SEEN:
            g.seen.popitem(last=False)
        d, p = self._judge_operator(g, op, "", op.time.timestamp())
        failed = [c.name for c in d.guard if not c.passed]
        if capacity_only(failed):
            g.operator_waiting.append(op)
            why = self._wait_reason(g, p, [c for c in d.guard if not c.passed])
            d = d.model_copy(update={"held": True, "reasons": [why, *d.reasons]})
        self._track(g, d)
        return [d]

    def _operator_proposal(self, g: GuardState, op: OperatorProposal) -> Proposal:
        """The step as the proposal the guard's checks read: state and placement from its own record."""
        info = g.nodes.get(op.node) or self._add_node(g, op.node, op.placement)
        takes_out = op.action in MUTATING and info.state in (H, S)
        names = ", ".join(f"{a.actor} ({a.role})" for a in op.approvers) or "nobody"
        return Proposal(
            id=op.id,
            time=op.time,
            node=op.node,
            gpu=op.gpu,
            from_state=info.state,
            to_state=Q if takes_out else info.state,
            trigger=Trigger.OPERATOR_PLAN,
            failure_class=op.failure_class,
            confidence=1.0,
            action=op.action,
            reasons=[
                f"repair plan {op.plan_id} ({op.workflow_id}) requested by {op.requested_by}, "
                f"approved by {names}"
            ],
            evidence=[],
            evidence_time=op.time,
            placement=info.placement,
        )

    def _judge_operator(
        self, g: GuardState, op: OperatorProposal, suffix: str, t: float, extra: tuple[str, ...] = ()
    ) -> tuple[Decision, Proposal]:
        """The guard's decision on an operator step now (not yet tracked; its id ``d-<step>`` plus
        ``suffix``), and the proposal judged."""
        p = self._operator_proposal(g, op)
        info = g.nodes[op.node]
        takes_out = p.to_state is Q and p.from_state is not Q
        mode = self._mode(g, op.failure_class)
        needs_approval = op.action in self.policy.approval_required_for
        checks = [
            GuardCheck(name="mode", passed=True, figures={"mode": mode.value, "operator_plan": op.plan_id})
            if c.name == "mode"
            else GuardCheck(
                name="approval",
                passed=bool(op.approvers) or not needs_approval,
                figures={"required": needs_approval, "approved": bool(op.approvers)},
            )
            if c.name == "approval"
            else c
            for c in self._basic_checks(g, p)
            if c.name != "stale"  # no evidence: a person's request, fresh when the API signed it
        ]
        if op.action in MUTATING:
            checks.append(self._in_flight_check(g, op.node, info.state))
            # A node already out of service takes no concurrency slot, but the pool's headroom is
            # still checked (the playbook's headroom precondition reads it from this decision).
            caps = self._capacity_checks(g, p)
            checks += caps if takes_out else [c for c in caps if c.name == "headroom"]
        d = self._decide(g, p, checks, t, decision_id(p) + suffix, extra)
        d = d.model_copy(
            update={
                "to_state": d.to_state if d.executable else info.state,
                "playbook": op.playbook,
                "plan_id": op.plan_id,
                "approvers": list(op.approvers),
            }
        )
        return d, p

    def _release_operator(self, g: GuardState) -> list[Decision]:
        """Judge each held operator step again: released when it passes, decided (refused) when a
        guardrail other than capacity now refuses it, kept waiting while capacity alone does, and
        retired once it waited ``max_wait_s`` on the guard's clock (the plan driver stops waiting too)."""
        waiting, g.operator_waiting = g.operator_waiting, []
        out: list[Decision] = []
        for op in waiting:
            waited = g.clock - op.time.timestamp()
            if waited > self.policy.max_wait_s:
                p = self._operator_proposal(g, op)
                why = (
                    f"operator plan step waited {waited:.0f}s for capacity, past max_wait_s "
                    f"({self.policy.max_wait_s:.0f}s): not run; the node stays {p.from_state.value}"
                )
                # Trigger operator_plan, not executable: the node stage leaves the node and its own
                # pending proposal alone, as for any refused plan step.
                d = self._plain(
                    g, p, p.from_state, Trigger.OPERATOR_PLAN, ActionKind.NONE, [why], [], g.clock
                )
                d = d.model_copy(
                    update={
                        "id": decision_id(p) + ":" + Trigger.CAPACITY_WAIT_EXPIRED,
                        "plan_id": op.plan_id,
                        "playbook": op.playbook,
                        "approvers": list(op.approvers),
                    }
                )
                self._track(g, d)
                out.append(d)
                continue
            t = max(g.clock, op.time.timestamp())
            d, _ = self._judge_operator(g, op, ":released", t, ("released: capacity freed",))
            if capacity_only([c.name for c in d.guard if not c.passed]):
                g.operator_waiting.append(op)
                continue
            self._track(g, d)
            out.append(d)
        return out

    @staticmethod
    def _in_flight_check(g: GuardState, node: str, state: NodeState) -> GuardCheck:
        """A run already acts on the node (an executable decision its results have not yet answered,
        or a repair or validation under way): a second run would race the first (two reboots, a
        drain during a validation), so a plan's step waits for the node to settle."""
        running = g.running.get(node)
        busy = state in (NodeState.REPAIRING, NodeState.VALIDATING)
        return GuardCheck(
            name="in_flight",
            passed=running is None and not busy,
            figures={"running": running, "state": state.value},
        )

    def _blast(self, g: GuardState, p: Proposal) -> tuple[str, str, int] | None:
        """Count nodes that would each have acted on the same signal, per scope: the first to cross a
        scope's threshold opens one incident and freezes automated quarantine of that signal in every
        scope the triggering node belongs to. Only quarantine proposals count (a Suspect node is worth a
        look, not an action), and only like with like: a storm of one signal never freezes another, and
        a weaker storm never freezes a decisive node-local fault (``_family``)."""
        if p.to_state is not Q or p.trigger not in QUARANTINE_TRIGGERS:
            return None
        if p.failure_class in (FailureClass.TENANT_REPORT, FailureClass.MONITORING):
            return None
        br = self.policy.blast_radius
        now = p.time.timestamp()
        opened = None
        scopes = _scopes(p.placement, p.job)
        fam = _family(p)
        covered = self._frozen(g, p) is not None
        for scope, value in scopes.items():
            limit = br.scopes.get(scope)
            if limit is None:
                continue
            key = f"{scope}:{value}:{fam}"
            q = g.blast.setdefault(key, deque())
            while q and now - q[0][0] > br.window_s:
                q.popleft()
            if p.node not in {n for _, n in q}:
                q.append((now, p.node))
            frozen = g.incidents.get(key)
            if frozen is not None and frozen[1] >= now:
                continue
            if len(q) >= limit and opened is None and not covered:
                inc = "inc-" + hashlib.sha1(f"{key}:{q[0][0]}".encode()).hexdigest()[:12]
                opened = (inc, key, len(q))
        if opened is not None:
            # One storm, one incident: freeze this signal in every scope the triggering node belongs to.
            for scope, value in scopes.items():
                g.incidents[f"{scope}:{value}:{fam}"] = (opened[0], now + br.window_s * 4)
        return opened

    def _change(self, g: GuardState, p: Proposal) -> Decision:
        """Symptoms attributed to a change are one incident per pool: the first node's decision
        recommends the rollback and opens it; every later node joins it (observe) and keeps it open, so a
        rollout that breaks 40 nodes over an hour is one rollback recommendation, not 40."""
        now = p.time.timestamp()
        key = f"pool:{p.placement.pool}:{CHANGE_CLASS}"
        until = now + self.policy.blast_radius.window_s * 4
        hit = g.incidents.get(key)
        if hit is not None and hit[1] >= now:
            g.incidents[key] = (hit[0], max(hit[1], until))
            follower = p.model_copy(update={"action": ActionKind.OBSERVE})
            why = f"part of change incident {hit[0]}: its rollback is already recommended"
            d = self._decide(g, follower, self._basic_checks(g, follower), now, decision_id(p), (why,))
            return d.model_copy(update={"incident_id": hit[0]})
        inc = "inc-" + hashlib.sha1(f"{key}:{now}".encode()).hexdigest()[:12]
        g.incidents[key] = (inc, until)
        why = f"opens change incident {inc}"
        d = self._decide(g, p, self._basic_checks(g, p), now, decision_id(p), (why,))
        return d.model_copy(update={"incident_id": inc})

    def _job_fault(self, g: GuardState, p: Proposal) -> Decision:
        """A job's crash is one job-level finding: the first node's report opens it, every other node of
        the job joins it. No node moves, nothing is executable, no blast-radius count rises: the job is
        at fault, not its hardware."""
        now = p.time.timestamp()
        key = f"job:{p.job}:{JOB_FAULT}"
        until = now + self.policy.blast_radius.window_s * 4
        hit = g.incidents.get(key)
        if hit is not None and hit[1] >= now:
            g.incidents[key] = (hit[0], max(hit[1], until))
            inc, why = hit[0], f"part of job finding {hit[0]}: job {p.job} crashed, its GPUs are not at fault"
        else:
            inc = "job-" + hashlib.sha1(f"{key}:{now}".encode()).hexdigest()[:12]
            g.incidents[key] = (inc, until)
            why = f"opens job finding {inc}: job {p.job} crashed; no node is suspected for it"
        d = self._decide(g, p, [], now, decision_id(p), (why,))
        return d.model_copy(update={"incident_id": inc, "executable": False})

    def _frozen(self, g: GuardState, p: Proposal) -> tuple[str, str] | None:
        """The open incident that freezes this proposal: one of its own signal family, at its own
        strength or, for a non-decisive proposal, a decisive storm of the same signal."""
        now = p.time.timestamp()
        families = [_family(p)]
        if not p.decisive:
            families.append(_family(p, decisive=True))
        for scope, value in _scopes(p.placement, p.job).items():
            for fam in families:
                key = f"{scope}:{value}:{fam}"
                hit = g.incidents.get(key)
                if hit is not None and hit[1] >= now:
                    return hit[0], key
        return None

    def _openers(self, g: GuardState, key: str) -> list[str]:
        """Nodes that raised the incident's signal in its scope within the window (those that opened it,
        and any that joined since)."""
        return sorted({n for _, n in g.blast.get(key, ())})

    def _stale_check(self, g: GuardState, p: Proposal, asked: float | None = None) -> GuardCheck:
        """Evidence older than the cutoff never acts: it arrived late (a collector's backlog, a replay).
        A released proposal's evidence is judged as of ``asked``, when its node first asked for the slot:
        the guard itself made it wait, and the node vouches for it still by renewing it (the proposal
        age check). Judged at release instead, a GPU off the bus that waited half an hour for its pool's
        slot was recorded as a stale quarantine nobody repairs, holding that slot for good."""
        evidence = p.evidence_time.timestamp()
        at = g.clock if asked is None else min(g.clock, max(asked, evidence))
        age = at - evidence
        cutoff = self.policy.stale_cutoff_s
        figures: dict[str, GuardFigure] = {"evidence_age_s": round(age, 1), "cutoff_s": cutoff}
        if asked is not None:
            figures["waited_s"] = round(g.clock - at, 1)
        return GuardCheck(name="stale", passed=age <= cutoff, figures=figures)

    def _mode(self, g: GuardState, failure_class: str) -> Mode:
        """The class's mode: a lever may set it, but auto only where the policy allows auto
        (``auto_allowed``); the guard re-checks this whoever signed the lever."""
        default = self.policy.mode_for(failure_class)
        mode = g.levers.mode(failure_class, default)
        if mode is Mode.AUTO and failure_class not in self.policy.auto_allowed:
            return default if default is not Mode.AUTO else Mode.RECOMMEND
        return mode

    def _basic_checks(self, g: GuardState, p: Proposal, asked: float | None = None) -> list[GuardCheck]:
        pol = self.policy
        pool = p.placement.pool
        mode = self._mode(g, p.failure_class)
        excluded = (
            g.levers.excluded(p.node, pool)
            or pool in pol.exclusions.pools
            or any(p.placement.labels.get(k) == v for k, v in pol.exclusions.labels.items())
        )
        ks = g.levers.engaged(pool)
        approved = bool(g.levers.approvals_for(p.node, decision_id(p), p.failure_class, p.action, g.clock))
        needs_approval = p.action in pol.approval_required_for
        hour = [t for t in g.executions if g.clock - t <= 3600]
        return [
            GuardCheck(name="replay", passed=not p.replay, figures={"replay": p.replay}),
            self._stale_check(g, p, asked),
            GuardCheck(name="killswitch", passed=not ks, figures={"engaged": ",".join(ks) or None}),
            GuardCheck(name="mode", passed=mode is Mode.AUTO, figures={"mode": mode.value}),
            GuardCheck(name="exclusion", passed=not excluded, figures={"pool": pool, "excluded": excluded}),
            GuardCheck(
                name="approval",
                passed=approved or not needs_approval,
                figures={"required": needs_approval, "approved": approved},
            ),
            GuardCheck(
                name="rate_limit",
                passed=len(hour) < pol.rate_limit.max_executable_per_hour,
                figures={"executed_last_hour": len(hour), "limit": pol.rate_limit.max_executable_per_hour},
            ),
        ]

    def _add_node(self, g: GuardState, node: str, placement: Placement) -> NodeInfo:
        info = g.nodes[node] = NodeInfo(placement)
        if g.counts is not None:
            g.counts.add(placement, info.state)
        return info

    def _counts(self, g: GuardState) -> FleetCounts:
        if g.counts is None:
            g.counts = FleetCounts.scan(g.nodes)
        return g.counts

    def _capacity_checks(self, g: GuardState, p: Proposal) -> list[GuardCheck]:
        """Concurrency per rack/pool/SKU and the pool's headroom, the proposing node left out of the
        in-flight figures."""
        pol = self.policy
        pl = p.placement
        checks = []
        limits = {
            "rack": pol.concurrency.per_rack,
            "pool": pol.concurrency.per_pool,
            "sku": pol.concurrency.per_sku,
        }
        counts = self._counts(g)
        in_flight, out = counts.others(pl, g.nodes.get(p.node))
        aside = self._not_holding(g, p)
        total = counts.pool_gpus[pl.pool]
        for key, limit in limits.items():
            n = in_flight[key] - aside.get(key, 0)
            figures: dict[str, object] = {"in_flight": n, "limit": limit, "emergency": g.levers.emergency}
            if aside.get(key):
                figures["validating_or_ticket"] = aside[key]
            checks.append(
                GuardCheck(
                    name=f"concurrency_{key}",
                    passed=g.levers.emergency or n < limit,
                    figures=figures,
                )
            )
        lost = self._lost_elsewhere(g, p)
        room = pool_headroom(total, out + lost, pl.gpus, pol.min_healthy_fraction(pl.pool))
        checks.append(
            GuardCheck(
                name="headroom",
                passed=room.ok,
                figures={
                    "pool_gpus": total,
                    "out_of_service_gpus": out,
                    "lost_gpus": lost,
                    "node_gpus": pl.gpus,
                    "healthy_after": room.after,
                    "min_healthy": round(room.minimum, 1),
                },
            )
        )
        return checks

    def _not_holding(self, g: GuardState, p: Proposal) -> dict[str, int]:
        """In-flight nodes per scope that do not hold a slot against ``p``: none, unless ``p`` is a
        decisive node-local fault (a GPU fallen off the bus, a DBE with its row remap pending or
        failed, uncontained ECC, a fatal link-down). Such a node is broken already: leaving it in
        service loses its jobs, not capacity. It does not wait for nodes that wait on a person
        (Quarantined for a ticket: nothing of the product's runs there), nor, in its pool and SKU, for
        nodes whose repair is over (Validating: a lingering flag can keep one there for hours). A
        validating node keeps its rack's slot: its burn-in loads the rack's power and NVLink domain.
        Those nodes still count against the pool's headroom, which every quarantine passes, and a
        storm of one decisive signal is still a blast-radius incident."""
        if not p.decisive:
            return {}
        own = g.nodes.get(p.node)
        aside = self._counts(g).validating_others(p.placement, own)
        aside["rack"] = 0
        for node in g.parked:
            info = g.nodes.get(node)
            if node != p.node and info is not None and info.state is Q:
                for scope in aside:
                    aside[scope] += getattr(info.placement, scope) == getattr(p.placement, scope)
        return aside

    def _holds_slot(self, g: GuardState, node: str, info: NodeInfo, p: Proposal, scope: str) -> bool:
        """Whether ``node`` holds ``p``'s concurrency slot in ``scope`` (the rule of :meth:`_not_holding`)."""
        if info.state not in IN_FLIGHT or not p.decisive:
            return info.state in IN_FLIGHT
        parked = info.state is Q and node in g.parked
        return not (parked or (info.state is V and scope != "rack"))

    @staticmethod
    def _lost_elsewhere(g: GuardState, p: Proposal) -> int:
        """GPUs other in-service nodes of the pool have lost on their own (NotReady, fallen off the bus):
        already removed, whatever the product does. Few nodes at a time, so a scan is cheap."""
        total = 0
        for node, n in g.lost.items():
            info = g.nodes.get(node)
            same_pool = info is not None and info.placement.pool == p.placement.pool
            if node != p.node and same_pool and info is not None and info.state in (H, S):
                total += min(n, info.placement.gpus)
        return total

    def _wait_reason(self, g: GuardState, p: Proposal, capacity: list[GuardCheck]) -> str:
        """Why a fault waits, naming the nodes that hold its slots: it is released when one of them
        returns to service or is escalated (a scan of the fleet, only when a proposal is held)."""
        failed = [c.name for c in capacity if not c.passed]
        holders: list[str] = []
        for name in failed:
            scope = name.removeprefix("concurrency_")
            if scope == name:
                continue
            value = getattr(p.placement, scope)
            holders += [
                f"{n} ({scope} {value}, {info.state.value})"
                for n, info in sorted(g.nodes.items())
                if n != p.node
                and self._holds_slot(g, n, info, p, scope)
                and getattr(info.placement, scope) == value
            ]
        why = f"waiting for capacity ({', '.join(failed)})"
        if holders:
            why += (
                f": in flight {', '.join(dict.fromkeys(holders))}; released when a slot frees "
                "(one of them returns to service or is escalated)"
            )
        return why

    def _breaker(self, g: GuardState) -> GuardCheck:
        br = self.policy.breaker
        while g.quarantines and g.clock - g.quarantines[0] > br.window_s:
            g.quarantines.popleft()
        n_nodes = len(g.nodes)
        n = len(g.quarantines) + 1
        frac = n / n_nodes if n_nodes else 0.0
        trip = n > br.max_nodes or (n_nodes >= br.min_nodes_for_fraction and frac > br.max_fraction)
        if trip and not g.breaker_open:
            g.breaker_open = True
        return GuardCheck(
            name="breaker",
            passed=not g.breaker_open,
            figures={
                "quarantines_in_window": n - 1,
                "nodes": n_nodes,
                "max_fraction": br.max_fraction,
                "max_nodes": br.max_nodes,
                "open": g.breaker_open,
            },
        )

    def _quarantine(
        self, g: GuardState, p: Proposal, info: NodeInfo, incident: tuple[str, str, int] | None
    ) -> Decision:
        now = p.time.timestamp()
        frozen = self._frozen(g, p)
        if frozen is not None:
            nodes = self._openers(g, frozen[1])
            chk = GuardCheck(
                name="blast_radius",
                passed=False,
                figures={"incident": frozen[0], "scope": frozen[1], "nodes": len(nodes)},
            )
            shown = ", ".join(nodes[:10]) + (f" and {len(nodes) - 10} more" if len(nodes) > 10 else "")
            why = (
                f"automated quarantine frozen in {frozen[1]} by incident {frozen[0]}: the same signal "
                f"({p.signal or p.failure_class}) on {shown}"
            )
            return self._held(g, p, [chk], why, frozen[0])
        if p.failure_class == FailureClass.TENANT_REPORT:
            # NICo's repair manual: a tenant's report takes the machine out of allocation at once,
            # capacity or not.
            return self._decide(g, p, self._basic_checks(g, p), now, decision_id(p))
        breaker = self._breaker(g)
        if not breaker.passed:
            g.backlog.append(p)
            return self._held(g, p, [breaker], "fleet circuit breaker open: queued until a person resets it")
        capacity = self._capacity_checks(g, p)
        if not all(c.passed for c in capacity):
            g.waiting.append(p)
            self._note_wait(g, p.node, now)
            return self._held(g, p, capacity, self._wait_reason(g, p, capacity))
        g.quarantines.append(now)
        return self._decide(g, p, [*self._basic_checks(g, p), breaker, *capacity], now, decision_id(p))

    # --- decision records -------------------------------------------------------------------

    def _decide(
        self,
        g: GuardState,
        p: Proposal,
        checks: list[GuardCheck],
        t: float,
        did: str,
        extra: tuple[str, ...] = (),
    ) -> Decision:
        mutating = p.action in MUTATING
        executable = mutating and all(c.passed for c in checks)
        stale = any(c.name == "stale" and not c.passed for c in checks)
        mode = next((Mode(str(c.figures["mode"])) for c in checks if c.name == "mode"), Mode.RECOMMEND)
        if any(c.name == "exclusion" and not c.passed for c in checks) and mode is Mode.AUTO:
            mode = Mode.RECOMMEND
        if executable:
            g.executions.append(t)
            while g.executions and t - g.executions[0] > 3600:
                g.executions.popleft()
        return Decision(
            id=did,
            time=_ts(t),
            node=p.node,
            gpu=p.gpu,
            from_state=p.from_state,
            to_state=p.to_state,
            trigger=p.trigger,
            failure_class=p.failure_class,
            confidence=p.confidence,
            action=p.action,
            mode=mode,
            executable=executable,
            reasons=[*extra, *p.reasons],
            evidence=p.evidence,
            guard=checks,
            policy_version=self.policy.version,
            stale=stale,
            replay=p.replay,
        )

    def _held(
        self, g: GuardState, p: Proposal, checks: list[GuardCheck], why: str, incident: str | None = None
    ) -> Decision:
        d = self._decide(g, p, checks, p.time.timestamp(), decision_id(p), (why,))
        return d.model_copy(
            update={"to_state": p.from_state, "held": True, "executable": False, "incident_id": incident}
        )

    def _plain(
        self,
        g: GuardState,
        p: Proposal,
        to: NodeState,
        trigger: str,
        action: ActionKind,
        reasons: list[str],
        checks: list[GuardCheck],
        t: float,
    ) -> Decision:
        return Decision(
            id=f"{decision_id(p)}:{trigger}",
            time=_ts(t),
            node=p.node,
            gpu=p.gpu,
            from_state=p.from_state,
            to_state=to,
            trigger=trigger,
            failure_class=p.failure_class,
            confidence=p.confidence,
            action=action,
            mode=self._mode(g, p.failure_class),
            executable=False,
            reasons=reasons,
            evidence=p.evidence,
            guard=checks,
            policy_version=self.policy.version,
            replay=p.replay,
        )

    def _incident_decision(
        self, g: GuardState, p: Proposal, incident: tuple[str, str, int], state: NodeState
    ) -> Decision:
        inc, key, n = incident
        chk = GuardCheck(
            name="blast_radius",
            passed=False,
            figures={"scope": key, "nodes": n, "window_s": self.policy.blast_radius.window_s},
        )
        return Decision(
            id=inc,
            time=p.time,
            node=p.node,
            gpu=None,
            from_state=state,
            to_state=state,
            trigger=Trigger.BLAST_RADIUS,
            failure_class=p.failure_class,
            confidence=p.confidence,
            action=ActionKind.FLEET_INCIDENT,
            mode=Mode.RECOMMEND,
            executable=False,
            reasons=[
                f"{n} nodes would each have been quarantined for {p.signal or p.failure_class} in {key} "
                f"within {self.policy.blast_radius.window_s:.0f}s: one fleet incident, automated "
                "quarantine of that signal frozen in that scope",
                f"nodes: {', '.join(self._openers(g, key))}",
            ],
            evidence=p.evidence,
            guard=[chk],
            policy_version=self.policy.version,
            incident_id=inc,
            replay=p.replay,
        )

    def _track(self, g: GuardState, d: Decision) -> None:
        if d.action is not ActionKind.FLEET_INCIDENT:
            info = g.nodes[d.node]
            if g.counts is not None:
                g.counts.move(info.placement, info.state, d.to_state)
            info.state = d.to_state  # a held decision's to_state is where the node stays
            if d.executable and not d.replay:
                g.running[d.node] = d.id
            elif d.trigger != Trigger.OPERATOR_PLAN:
                # A refused plan step answers the plan, not the node: the node's own run goes on.
                g.running.pop(d.node, None)
            if d.to_state is Q and d.action is ActionKind.TICKET and not d.held:
                g.parked.add(d.node)
            elif d.to_state is not Q or not d.held:
                g.parked.discard(d.node)
            if not d.held and d.trigger != EXPIRED:
                g.wait_started.pop(d.node, None)  # the node moved on: its wait for capacity is over

    def _note_wait(self, g: GuardState, node: str, now: float) -> None:
        """Start a node's wait, or continue it when the node asks again soon after its last ask expired."""
        start, last = g.wait_started.get(node, (now, now))
        if now - last > self.policy.stale_cutoff_s:
            start = now
        g.wait_started[node] = (start, now)

    def _unqueue(self, g: GuardState, node: str, now: float) -> Proposal | None:
        """Take a node's queued proposal out of the queues when the node speaks again: its new proposal
        (a renewal or another transition) or its withdrawal replaces it. The wait goes on from its start."""
        found = [p for p in (*g.waiting, *g.backlog) if p.node == node]
        if not found:
            return None
        g.waiting = [p for p in g.waiting if p.node != node]
        g.backlog = [p for p in g.backlog if p.node != node]
        if node in g.wait_started:
            g.wait_started[node] = (g.wait_started[node][0], now)
        return found[-1]

    def _age_check(self, g: GuardState, p: Proposal, now: float) -> GuardCheck:
        """A proposal is the node's judgement at ``p.time``; past the stale cutoff it no longer speaks
        for the node's present, whatever its evidence (a decaying signal may long have faded)."""
        age = now - p.time.timestamp()
        cutoff = self.policy.stale_cutoff_s
        return GuardCheck(
            name="proposal_age",
            passed=age <= cutoff,
            figures={"proposal_age_s": round(age, 1), "cutoff_s": cutoff},
        )

    def _expire(self, g: GuardState, p: Proposal, withdrawal: Proposal) -> Decision:
        """Retire a queued proposal its node withdrew once it outlived the stale cutoff with evidence
        that no longer crosses the threshold: granting it would quarantine a node for what it showed
        long ago. The decision is recorded at the withdrawal's time and moves nothing (not held, so the
        node stage forgets the held class); the node proposes again if its fault comes back."""
        t = withdrawal.time.timestamp()
        age = self._age_check(g, p, t)
        why = (
            f"expired while waiting: proposal {age.figures['proposal_age_s']}s old, past the "
            f"{self.policy.stale_cutoff_s:.0f}s stale cutoff; the node stays {p.from_state.value} and "
            "re-proposes if its current evidence still crosses the threshold"
        )
        checks = [age, self._stale_check(g, p)]
        reasons = [why, *withdrawal.reasons, *p.reasons]
        d = self._plain(g, p, p.from_state, EXPIRED, ActionKind.NONE, reasons, checks, t)
        d = d.model_copy(update={"stale": True})
        self._track(g, d)
        return d

    def _release(self, g: GuardState, p: Proposal, why: str) -> list[Decision]:
        info = g.nodes[p.node]
        if info.state is not p.from_state:
            return []  # superseded: the node moved on while it waited
        if not self._age_check(g, p, g.clock).passed:
            g.waiting.append(p)  # never granted this old: its node renews or withdraws it
            return []
        capacity = self._capacity_checks(g, p)
        if not all(c.passed for c in capacity):
            g.waiting.append(p)
            return []
        g.quarantines.append(g.clock)
        asked = g.wait_started.get(p.node, (p.time.timestamp(), 0.0))[0]
        checks = [*self._basic_checks(g, p, asked), *capacity]
        d = self._decide(g, p, checks, g.clock, f"{decision_id(p)}:released", (why,))
        self._track(g, d)
        return [d]

    def _drain_waiting(self, g: GuardState) -> list[Decision]:
        if not g.waiting:
            return self._release_operator(g) if g.operator_waiting else []
        # A decisive node-local fault goes first: it is broken now, a weaker signal may still be wrong.
        waiting, g.waiting = sorted(g.waiting, key=lambda p: not p.decisive), []
        out: list[Decision] = []
        for p in waiting:
            if g.nodes[p.node].state is not p.from_state:
                continue  # superseded: the node moved on while it waited
            if not self._age_check(g, p, g.clock).passed:
                g.waiting.append(p)  # never granted this old: its node renews or withdraws it
                continue
            start = g.wait_started.get(p.node, (p.time.timestamp(), 0.0))[0]
            if g.clock - start > self.policy.max_wait_s:
                d = self._plain(
                    g,
                    p,
                    E,
                    Trigger.CAPACITY_WAIT_EXPIRED,
                    ActionKind.TICKET,
                    [f"waited {g.clock - start:.0f}s for a slot: needs a person"],
                    [],
                    g.clock,
                )
                self._track(g, d)
                out.append(d)
                continue
            if g.breaker_open:
                g.waiting.append(p)
                continue
            out.extend(self._release(g, p, "released: capacity freed"))
        if g.operator_waiting:
            out.extend(self._release_operator(g))
        return out
