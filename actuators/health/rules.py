"""The release/repair semantics of NICo's repair manual (its FAQ Q1-Q5) as pure functions over a
machine record.

- Q1 tenant reports an issue, auto-repair disabled: tenant-reported-issue only.
- Q2 auto-repair enabled: tenant-reported-issue + repair-request; unclaimed past a limit = limbo.
- Q3 repair tenant releases "fixed": repair-request removed; a new issue re-applies
  tenant-reported-issue (machine stays out), none returns it to the pool; never auto-repair again.
- Q4 release with repair_status=Completed: both removed, machine available.
- Q5 release without Completed (Failed, InProgress, missing, anything else): repair-request removed,
  tenant-reported-issue applied or updated, machine stays out, auto-repair not triggered again.

Ownership: automation lifts only overrides whose source is ours. The one exception is the
repair-request a repair release consumes, whoever raised it (the FAQ removes it on every release;
keeping it would send the machine straight back to the repair tenant). Each function returns the
new record and an :class:`Outcome` that says what changed and why; records are never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from actuators.base import OWNER, Refused
from actuators.health.model import HealthOverride, Issue, MachineRecord, OverrideKind

COMPLETED = "Completed"
TRI = OverrideKind.TENANT_REPORTED_ISSUE
REPAIR = OverrideKind.REPAIR_REQUEST
OUT = OverrideKind.OUT_FOR_REPAIR


@dataclass(frozen=True)
class Outcome:
    record: MachineRecord
    applied: tuple[OverrideKind, ...] = ()
    removed: tuple[OverrideKind, ...] = ()
    notes: tuple[str, ...] = ()
    escalate: bool = False
    """The repair did not succeed: the workflow should escalate (out-for-repair) rather than retry."""

    @property
    def available(self) -> bool:
        return self.record.available


@dataclass
class _Change:
    rec: MachineRecord
    applied: list[OverrideKind] = field(default_factory=list)
    removed: list[OverrideKind] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, kind: OverrideKind, message: str, now: datetime, decision_id: str | None = None) -> None:
        """Apply (or update the message of) our override; an operator's one of that kind stays theirs."""
        current = self.rec.overrides.get(kind)
        if current is not None and not current.ours:
            self.notes.append(f"{kind} already set by {current.source}; left as is")
            return
        new = HealthOverride(kind=kind, source=OWNER, message=message, set_at=now, decision_id=decision_id)
        self.rec = self.rec.model_copy(update={"overrides": {**self.rec.overrides, kind: new}})
        self.applied.append(kind)

    def drop(self, kind: OverrideKind, *, any_source: bool = False) -> None:
        current = self.rec.overrides.get(kind)
        if current is None:
            return
        if not (current.ours or any_source):
            self.notes.append(f"{kind} was set by {current.source}; only they lift it")
            return
        rest = {k: v for k, v in self.rec.overrides.items() if k != kind}
        self.rec = self.rec.model_copy(update={"overrides": rest})
        self.removed.append(kind)

    def done(self, escalate: bool = False) -> Outcome:
        return Outcome(self.rec, tuple(self.applied), tuple(self.removed), tuple(self.notes), escalate)


def tenant_report(rec: MachineRecord, issue: Issue, auto_repair_enabled: bool) -> Outcome:
    """A tenant released the machine reporting ``issue`` (Q1, Q2)."""
    c = _Change(rec.model_copy(update={"issues": [*rec.issues, issue]}))
    c.put(TRI, f"{issue.category}: {issue.summary}", issue.reported_at)
    if not auto_repair_enabled:
        c.notes.append("auto-repair disabled: manual intervention needed (request repair by hand)")
    elif rec.auto_repair_used:
        c.notes.append("auto-repair already ran for this problem: not triggered again")
    elif not rec.has(REPAIR):
        c.put(REPAIR, f"auto-repair for {issue.category}: {issue.summary}", issue.reported_at)
        c.rec = c.rec.model_copy(update={"auto_repair_used": True})
    return c.done()


def claim(rec: MachineRecord, instance_id: str, now: datetime) -> MachineRecord:
    """The repair tenant allocated the machine (it leaves limbo)."""
    if not rec.has(REPAIR):
        raise Refused(f"{rec.machine_id} has no repair-request to claim")
    return rec.model_copy(update={"claimed_by": instance_id, "claimed_at": now})


def in_limbo(rec: MachineRecord, now: datetime, max_wait: timedelta) -> bool:
    """Q2: repair requested longer than ``max_wait`` ago and nobody claimed the machine."""
    req = rec.overrides.get(REPAIR)
    return req is not None and rec.claimed_by is None and now - req.set_at > max_wait


def repair_release(
    rec: MachineRecord,
    repair_status: str | None,
    now: datetime,
    details: str = "",
    new_issue: Issue | None = None,
) -> Outcome:
    """The repair tenant released the machine (Q3, Q4, Q5). Not a repair release without a
    repair-request: then nothing changes. Issues reported while the repair was under way count as
    the repair tenant's new findings."""
    if not rec.has(REPAIR):
        return Outcome(rec, notes=(f"{rec.machine_id} has no repair-request: not a repair release; ignored",))
    started = rec.overrides[REPAIR].set_at
    found = [i for i in rec.issues if i.reported_at > started]
    if new_issue is not None:
        found.append(new_issue)
    labels = {**rec.labels, "repair_status": repair_status or "", "repair_details": details}
    c = _Change(
        rec.model_copy(
            update={
                "labels": labels,
                "issues": [*rec.issues, *([new_issue] if new_issue else [])],
                "claimed_by": None,
                "claimed_at": None,
            }
        )
    )
    c.drop(REPAIR, any_source=True)
    if repair_status == COMPLETED and not found:
        c.drop(TRI)
        c.rec = c.rec.model_copy(update={"auto_repair_used": False})
        return c.done()
    if repair_status == COMPLETED:
        latest = found[-1]
        c.put(TRI, f"after repair: {latest.category}: {latest.summary}", now)
        c.notes.append("repair claimed complete but new issues were reported: machine stays out")
    else:
        shown = repair_status if repair_status else "missing"
        c.put(TRI, f"repair not completed (repair_status={shown})", now)
        c.notes.append(f"repair_status={shown} is handled as a failed repair")
    c.notes.append("auto-repair is not triggered again")
    return c.done(escalate=True)


def request_repair(
    rec: MachineRecord, message: str, now: datetime, decision_id: str | None, approved: bool
) -> Outcome:
    """A workflow asks the repair system to take the machine. Automation gets one repair per problem;
    a second needs a person's approval (which does not spend the automatic one)."""
    if rec.has(REPAIR):
        return Outcome(rec, notes=("repair already requested",))
    if rec.auto_repair_used and not approved:
        raise Refused(
            f"auto-repair already ran for {rec.machine_id}'s problem; a person must request another"
        )
    c = _Change(rec)
    c.put(REPAIR, message, now, decision_id)
    if not approved:
        c.rec = c.rec.model_copy(update={"auto_repair_used": True})
    return c.done()


def escalate(rec: MachineRecord, message: str, now: datetime, decision_id: str | None = None) -> Outcome:
    """Hand the machine to operations: out-for-repair (keeps every other override)."""
    c = _Change(rec)
    c.put(OUT, message, now, decision_id)
    return c.done(escalate=True)


def add_override(rec: MachineRecord, kind: OverrideKind, source: str, message: str, now: datetime) -> Outcome:
    """A person (``source`` = ``operator:<name>``) adds an override, e.g. the FAQ's manual RequestRepair.
    Allowed whatever the auto-repair state: the no-loop rule binds automation, not people."""
    if source == OWNER:
        raise ValueError("add_override is the operator path; automation uses the rule functions")
    override = HealthOverride(kind=kind, source=source, message=message, set_at=now)
    return Outcome(rec.model_copy(update={"overrides": {**rec.overrides, kind: override}}), applied=(kind,))


def remove_override(rec: MachineRecord, kind: OverrideKind, by_human: bool) -> Outcome:
    """Lift one override. Automation may lift only its own; a person may lift any. A person clearing
    the last override also resets the no-loop memory (the problem is considered handled)."""
    current = rec.overrides.get(kind)
    if current is None:
        return Outcome(rec, notes=(f"{kind} is not set",))
    if not by_human and not current.ours:
        raise Refused(f"{kind} on {rec.machine_id} was set by {current.source}; automation never lifts it")
    c = _Change(rec)
    c.drop(kind, any_source=True)
    if by_human and c.rec.available:
        c.rec = c.rec.model_copy(update={"auto_repair_used": False})
    return c.done()
