"""Health overrides as an actuator (playbook steps) and as the handler of NICo-style release events.

Events: a ``tenant.report`` (tenant released the machine with an issue) and a ``repair.status``
(the repair tenant released it) go through :meth:`HealthOverrideActuator.on_event`, which applies
the FAQ Q1-Q5 rules of :mod:`actuators.health.rules` and stores the record.

Playbook verbs: ``show`` (read-only); ``set`` with ``params.override``: ``repair-request`` (refused
when auto-repair already ran for this problem unless a person approved) or ``out-for-repair``
(escalation); ``clear`` (lift our own overrides; ``params.override`` to lift one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from actuators.base import PermanentError, StepContext, StepResult, StepSpec, ensure_allowed
from actuators.health import rules
from actuators.health.model import Issue, MachineRecord, OverrideKind
from actuators.health.store import MachineStore
from actuators.registry import kind
from schemas.events import RepairStatus, TenantReport

OPERATIONS = kind("health_override").operations
"""This kind's verbs, as registered in ``actuators.registry`` (one list for playbooks and actuator)."""


def describe(rec: MachineRecord) -> dict[str, Any]:
    return {
        "machine": rec.machine_id,
        "available": rec.available,
        "overrides": {k.value: {"source": o.source, "message": o.message} for k, o in rec.overrides.items()},
        "auto_repair_used": rec.auto_repair_used,
        "labels": dict(rec.labels),
    }


class HealthOverrideActuator:
    name = "health_override"

    def __init__(self, store: MachineStore, auto_repair_enabled: bool) -> None:
        self.store = store
        self.auto_repair_enabled = auto_repair_enabled

    def supports(self, operation: str) -> bool:
        return operation in OPERATIONS

    def owns(self, node: str) -> bool:
        rec = self.store.get(node)
        return rec is not None and any(o.ours for o in rec.overrides.values())

    def _record(self, machine_id: str) -> MachineRecord:
        return self.store.get(machine_id) or MachineRecord(machine_id=machine_id)

    def on_event(self, event: TenantReport | RepairStatus) -> rules.Outcome:
        """Apply a release event to the machine's record (the machine id is the event's node)."""
        rec = self._record(event.node)
        if isinstance(event, TenantReport):
            d = event.data
            issue = Issue(category=d.category, summary=d.summary, details=d.details, reported_at=event.time)
            outcome = rules.tenant_report(rec, issue, self.auto_repair_enabled)
        else:
            outcome = rules.repair_release(
                rec, event.data.repair_status, event.time, details=event.data.repair_details
            )
        self.store.put(outcome.record)
        return outcome

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if step.operation not in OPERATIONS:
            raise PermanentError(f"health_override actuator has no operation {step.operation!r}")
        rec = self._record(ctx.node)
        if step.operation == "show":
            return StepResult(f"{ctx.node} available={rec.available}", changed=False, outputs=describe(rec))
        now = datetime.now(UTC)
        message = str(step.params.get("message") or f"{ctx.failure_class} (decision {ctx.decision_id})")
        if step.operation == "clear":
            outcome = self._clear(rec, step.params.get("override"), ctx)
        else:
            outcome = self._set(rec, str(step.params.get("override", "")), message, now, ctx)
        self.store.put(outcome.record)
        changed = bool(outcome.applied or outcome.removed)
        detail = "; ".join(
            [f"applied {', '.join(outcome.applied)}"] * bool(outcome.applied)
            + [f"removed {', '.join(outcome.removed)}"] * bool(outcome.removed)
            + list(outcome.notes)
        )
        return StepResult(detail or "no change", changed=changed, outputs=describe(outcome.record))

    def _set(
        self, rec: MachineRecord, override: str, message: str, now: datetime, ctx: StepContext
    ) -> rules.Outcome:
        if override == OverrideKind.REPAIR_REQUEST:
            if not rec.has(OverrideKind.REPAIR_REQUEST):
                ensure_allowed(ctx)
            return rules.request_repair(rec, message, now, ctx.decision_id, ctx.approved)
        if override == OverrideKind.OUT_FOR_REPAIR:
            if rec.has(OverrideKind.OUT_FOR_REPAIR):
                return rules.Outcome(rec, notes=("already out for repair",))
            ensure_allowed(ctx)
            return rules.escalate(rec, message, now, ctx.decision_id)
        raise PermanentError(
            f"set needs params.override = repair-request or out-for-repair, not {override!r} "
            "(tenant-reported-issue comes only from tenant reports)"
        )

    def _clear(self, rec: MachineRecord, kind: Any, ctx: StepContext) -> rules.Outcome:
        kinds = [OverrideKind(kind)] if kind else [k for k, o in rec.overrides.items() if o.ours]
        ensure_allowed(ctx)
        outcome = rules.Outcome(rec)
        removed: list[OverrideKind] = []
        for k in kinds:
            outcome = rules.remove_override(outcome.record, k, by_human=False)
            removed += outcome.removed
        return rules.Outcome(outcome.record, removed=tuple(removed))
