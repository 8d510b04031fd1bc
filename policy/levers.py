"""The operator's levers as one model, changed by one :func:`apply`: what the guard judges proposals
against, what the actuator stage re-checks before every mutating step, and what the API shows and
obeys. Three readers of the compacted control topic, one meaning of every message on it.

The rules every reader shares:

- a kill switch is ``global`` or per pool; a node is stopped by the global one or its pool's;
- an exclusion names a pool or a node; an excluded node, or any node of an excluded pool, is left to
  people (the guard never makes its decisions executable, actuators refuse its mutating steps);
- a mode is per failure class and overrides the policy's mode for that class;
- an approval is one person's, for one node (``node:<node>``) or one decision (``decision:<id>``:
  the id operators see; the guard looks up the id of the decision it records when it first judges a
  proposal, so approving a held decision counts when its proposal is released). It may name the
  failure class and action approved (then it covers only those) and an expiry, and covers nothing
  once ``used``; ``approved: false`` withdraws that person's approval;
- the latest message per lever wins, latest by position in the control topic, never by the time a
  message claims. Readers that see messages in log order pass no ``stamp``; a reader that also sees
  its own writes first (the API) passes the message's offset as ``stamp``, so a message read late
  does not undo one written after it.

A breaker reset is not a lever the model keeps: :func:`apply` hands it back in the :class:`Change`
for the guard, which owns the breaker, to act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.control import ApprovalGrant, BreakerReset, ControlKind, ControlMessage, ModeSetting, Switch
from schemas.decision import Mode
from schemas.vocab import GLOBAL, Scope, ScopeKind


@dataclass(frozen=True)
class Approval:
    """One person's approval. ``id`` is the control message that granted it; ``failure_class`` and
    ``action`` (None: any) and ``expires_at`` (epoch seconds, None: no expiry) bound what it covers;
    ``used`` marks an approval already spent on a run."""

    id: str
    scope: str
    actor: str
    role: str
    failure_class: str | None = None
    action: str | None = None
    expires_at: float | None = None
    used: bool = False

    def covers(self, failure_class: str, action: str, now: float | None) -> bool:
        """Whether this approval still allows ``action`` for ``failure_class`` at ``now``."""
        return (
            not self.used
            and self.failure_class in (None, failure_class)
            and self.action in (None, action)
            and (self.expires_at is None or now is None or now <= self.expires_at)
        )


@dataclass(frozen=True)
class Change:
    """What one message did. ``lifted``: a lever that stops work was released or an approval arrived,
    so work paused by a lever may resume; ``reset``: a breaker reset for the guard to carry out."""

    applied: bool
    lifted: bool = False
    reset: BreakerReset | None = None


@dataclass
class Levers:
    killswitch: dict[str, bool] = field(default_factory=dict)
    """Scope (``global``, ``pool:<name>``) → engaged; scopes switched off stay, as False."""
    modes: dict[str, Mode] = field(default_factory=dict)
    """Failure class → the mode an operator set for it."""
    approvals: dict[str, dict[str, Approval]] = field(default_factory=dict)
    """Scope (``node:<node>``, ``decision:<id>``) → actor → that person's approval."""
    emergency: bool = False
    excluded_pools: set[str] = field(default_factory=set)
    excluded_nodes: set[str] = field(default_factory=set)
    stamps: dict[str, Any] = field(default_factory=dict)
    """Lever key → order stamp of the message that set it, for readers that pass stamps."""

    # --- reading --------------------------------------------------------------------------------

    def engaged(self, pool: str | None) -> list[str]:
        """The kill switches that stop work in ``pool`` (None: the global one only), sorted."""
        scopes = {str(GLOBAL)} if pool is None else {str(GLOBAL), str(Scope.pool(pool))}
        return sorted(s for s in scopes if self.killswitch.get(s, False))

    def killswitch_on(self, pool: str | None) -> bool:
        return bool(self.engaged(pool))

    def excluded(self, node: str, pool: str | None) -> bool:
        return node in self.excluded_nodes or (pool is not None and pool in self.excluded_pools)

    def mode(self, failure_class: str, default: Mode) -> Mode:
        return self.modes.get(failure_class, default)

    def approvals_for(
        self, node: str, decision_id: str, failure_class: str, action: str, now: float | None = None
    ) -> list[Approval]:
        """Every person's approval covering this node or decision, one per person (a decision's own
        approval before the node's), sorted by actor."""
        found: dict[str, Approval] = {}
        for scope in (str(Scope.node(node)), str(Scope.decision(decision_id))):
            for actor, a in self.approvals.get(scope, {}).items():
                if a.covers(failure_class, action, now):
                    found[actor] = a
        return [found[actor] for actor in sorted(found)]


def apply(levers: Levers, msg: ControlMessage, stamp: Any = None) -> Change:
    """Apply one control message (already validated: its scope and value fit its kind)."""
    key = msg.key
    if msg.kind is ControlKind.APPROVAL:
        key = f"{key}:{msg.actor}"  # approvals accumulate per person
    if stamp is not None:
        held = levers.stamps.get(key)
        if held is not None and stamp < held:
            return Change(applied=False)
        levers.stamps[key] = stamp
    target, payload = msg.target, msg.payload
    if isinstance(payload, Switch):
        return _switch(levers, msg.kind, target, payload.on)
    if isinstance(payload, ModeSetting):
        levers.modes[target.name] = payload.mode
        return Change(applied=True)
    if isinstance(payload, ApprovalGrant):
        return _approval(levers, msg, payload)
    return Change(applied=True, reset=payload)


def lifts(msg: ControlMessage) -> bool:
    """Whether ``msg`` releases a lever that stops work (the same rule :func:`apply` reports as
    ``lifted``): what makes the guard re-issue the runs a lever may have paused."""
    return apply(Levers(), msg).lifted


def _switch(levers: Levers, kind: ControlKind, target: Scope, on: bool) -> Change:
    if kind is ControlKind.KILLSWITCH:
        levers.killswitch[str(target)] = on
    elif kind is ControlKind.EMERGENCY:
        levers.emergency = on
    else:
        names = levers.excluded_nodes if target.kind is ScopeKind.NODE else levers.excluded_pools
        (names.add if on else names.discard)(target.name)
    return Change(applied=True, lifted=not on and kind is not ControlKind.EMERGENCY)


def _approval(levers: Levers, msg: ControlMessage, grant: ApprovalGrant) -> Change:
    people = levers.approvals.setdefault(msg.scope, {})
    if not grant.approved:
        people.pop(msg.actor, None)
        if not people:
            del levers.approvals[msg.scope]
        return Change(applied=True)
    people[msg.actor] = Approval(
        id=msg.id,
        scope=msg.scope,
        actor=msg.actor,
        role=msg.role,
        failure_class=grant.failure_class,
        action=grant.action,
        expires_at=None if grant.expires_at is None else grant.expires_at.timestamp(),
    )
    return Change(applied=True, lifted=True)
