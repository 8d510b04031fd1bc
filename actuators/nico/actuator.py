"""NICo as an actuator: the repair system's side of NICo's repair tenant workflow, as playbook steps.

Verbs, in the order a repair playbook uses them (NICo's ``docs/manuals/repair/repair_tenant_workflow.md``):

- ``push_evidence``: the product's evidence as a health report under its own source, Merge mode,
  classified ``PreventAllocations`` (the machine leaves the allocation pool while it is examined);
- ``request_repair``: make sure the machine carries a ``repair-request`` override (a tenant release
  with auto-repair on already set it; otherwise it is added like NICo's manual RequestRepair);
- ``claim``: a targeted repair instance in the repair tenant (``allowUnhealthyMachine``), then the
  machine label ``repair_status: InProgress`` first, so an older Completed is never read as this
  attempt's outcome;
- ``finish`` with ``params.status``: the outcome labels (``repair_status``, ``repair_details``,
  ``repair_eta``) merged into the machine's label map, then the release with ``isRepairTenant`` and,
  unless Completed, a machine health issue (NICo then keeps the machine out and removes
  ``repair-request``); on Completed the product's own evidence source is removed too;
- ``escalate``: an OutForRepair alert under the product's own source (out of automated repair);
- ``clear_evidence``: remove the product's source, and only it.

Every mutating verb re-checks the kill switch and exclusions first and is idempotent: it reads NICo's
state and does nothing when the work is already done (a resumed run repeats no release).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from actuators.base import (
    PermanentError,
    Refused,
    StepContext,
    StepResult,
    StepSpec,
    TemporaryError,
    ensure_allowed,
)
from actuators.nico import labels as L
from actuators.nico.config import NicoConfig
from actuators.nico.health import (
    ONLINE_REPAIR,
    PREVENT_ALLOCATIONS,
    REPAIR_REQUEST,
    SUPPRESS_EXTERNAL_ALERTING,
    Alert,
    HealthReports,
    Report,
)
from actuators.nico.rest import NicoRest
from actuators.registry import kind

OPERATIONS = kind("nico").operations
"""This kind's verbs, as registered in ``actuators.registry`` (one list for playbooks and actuator)."""
CLAIM_LABEL = "repair.workflow"
DECISION_LABEL = "repair.decision"


class NicoActuator:
    name = "nico"

    def __init__(self, cfg: NicoConfig, rest: NicoRest, health: HealthReports | None) -> None:
        self.cfg, self.rest, self.health = cfg, rest, health

    def supports(self, operation: str) -> bool:
        return operation in OPERATIONS

    def owns(self, node: str) -> bool:
        return any(r.source == self.cfg.source for r, _ in self._reports(node))

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        op = step.operation
        if op not in OPERATIONS:
            raise PermanentError(f"nico actuator has no operation {op!r}")
        result: StepResult = getattr(self, f"_{op}")(step, ctx)
        return result

    # --- health reports ---------------------------------------------------------------------------

    def _reports(self, machine: str) -> list[tuple[Report, str]]:
        if self.health is None:
            raise PermanentError("NICo health reports need the core's gRPC address (--nico-grpc HOST:PORT)")
        return [(r, m) for r, m in self.health.list(machine)]

    def _ours(self, machine: str) -> Report | None:
        return next((r for r, _ in self._reports(machine) if r.source == self.cfg.source), None)

    def _push_evidence(self, step: StepSpec, ctx: StepContext) -> StepResult:
        alert = Alert(
            id=_probe_id(ctx.failure_class),
            target=f"gpu{ctx.gpu}" if ctx.gpu is not None else None,
            message=json.dumps(
                {
                    "decision": ctx.decision_id,
                    "failure_class": ctx.failure_class,
                    "reasons": list(ctx.reasons),
                }
            ),
            tenant_message=f"Break-fix automation: {ctx.failure_class} under investigation",
            classifications=(PREVENT_ALLOCATIONS, SUPPRESS_EXTERNAL_ALERTING),
            in_alert_since=datetime.now(UTC),
        )
        current = self._ours(ctx.node)
        if current is not None and any(_same(a, alert) for a in current.alerts):
            return StepResult(f"evidence already under source {self.cfg.source}", changed=False)
        ensure_allowed(ctx)
        self._write_ours(ctx.node, current, alert)
        return StepResult(
            f"evidence pushed under source {self.cfg.source} (Merge)", outputs={"alert": alert.id}
        )

    def _write_ours(self, machine: str, current: Report | None, alert: Alert) -> None:
        """NICo's insert replaces the source's whole report, so the product's earlier alerts are
        carried over (one per id and target); Merge mode keeps every other source's report."""
        kept = tuple(
            a for a in (current.alerts if current else ()) if (a.id, a.target) != (alert.id, alert.target)
        )
        report = Report(source=self.cfg.source, alerts=(*kept, alert), observed_at=datetime.now(UTC))
        self._health().insert(machine, report, "Merge")

    def _request_repair(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if any(r.source == REPAIR_REQUEST for r, _ in self._reports(ctx.node)):
            return StepResult("repair-request override present", changed=False)
        ensure_allowed(ctx)
        summary = "; ".join(ctx.reasons)[:1024] or ctx.failure_class
        alert = Alert(
            id="RequestRepair",
            target="repair-requested",
            message=json.dumps(
                {"issue_category": "Hardware", "summary": summary, "details": ctx.decision_id}
            ),
            tenant_message=f"RepairSystem: Node ready for repair - {summary}",
            classifications=(PREVENT_ALLOCATIONS, SUPPRESS_EXTERNAL_ALERTING),
        )
        report = Report(source=REPAIR_REQUEST, alerts=(alert,), observed_at=datetime.now(UTC))
        self._health().insert(ctx.node, report, "Merge")
        return StepResult("repair-request override added")

    def _escalate(self, step: StepSpec, ctx: StepContext) -> StepResult:
        current = self._ours(ctx.node)
        if current is not None and any(a.target == "OutForRepair" for a in current.alerts):
            return StepResult("already out for repair", changed=False)
        ensure_allowed(ctx)
        alert = Alert(
            id="Maintenance",
            target="OutForRepair",
            message=str(step.params.get("message") or f"automated repair unsuccessful ({ctx.decision_id})"),
            classifications=(PREVENT_ALLOCATIONS, SUPPRESS_EXTERNAL_ALERTING),
        )
        self._write_ours(ctx.node, current, alert)
        return StepResult("out for repair: automated repair will not pick the machine up again")

    def _clear_evidence(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if self._ours(ctx.node) is None:
            return StepResult(f"no report under source {self.cfg.source}", changed=False)
        ensure_allowed(ctx)
        self._drop_evidence(ctx)
        return StepResult(f"removed source {self.cfg.source} (other sources untouched)")

    def _health(self) -> HealthReports:
        if self.health is None:
            raise PermanentError("NICo health reports need the core's gRPC address (--nico-grpc HOST:PORT)")
        return self.health

    # --- claim, outcome, release ------------------------------------------------------------------

    def _claim(self, step: StepSpec, ctx: StepContext) -> StepResult:
        machine = self.rest.machine(ctx.node)
        held = machine.get("instanceId")
        if held and self._online(ctx.node):
            return self._mark_in_progress(ctx, machine, held, changed=False, online=True)
        if held:
            if not self._this_repair(machine, ctx):
                # A tenant still holds it (NICo: "Machine is assigned to an Instance"); the evidence
                # already keeps new allocations off. Wait for the release within the step's budget,
                # then the playbook escalates.
                raise TemporaryError(
                    f"{ctx.node} is still assigned to instance {held}: waiting for its release",
                    retry_after_s=30,
                )
            return self._mark_in_progress(ctx, machine, held, changed=False)
        ensure_allowed(ctx)
        t = self.cfg.tenant
        inst = self.rest.create_instance(
            {
                "name": f"repair-{ctx.node}"[:256],
                "description": f"break-fix repair: {ctx.failure_class}, decision {ctx.decision_id}"[:1024],
                "tenantId": t.tenant_id,
                "machineId": ctx.node,
                "vpcId": t.vpc_id,
                "operatingSystemId": t.operating_system_id,
                "allowUnhealthyMachine": True,
                "interfaces": [{"vpcPrefixId": t.vpc_prefix_id, "isPhysical": True}],
                "labels": {CLAIM_LABEL: "breakfix", DECISION_LABEL: ctx.decision_id[:255]},
            }
        )
        return self._mark_in_progress(ctx, self.rest.machine(ctx.node), str(inst["id"]), changed=True)

    def _this_repair(self, machine: dict[str, Any], ctx: StepContext) -> bool:
        """The machine's instance is this decision's repair instance (the repair tenant's, carrying
        the decision's label); another tenant's instance is not even visible to the repair tenant."""
        if machine.get("tenantId") != self.cfg.tenant.tenant_id:
            return False
        inst = self.rest.instance(str(machine["instanceId"]))
        return (inst.get("labels") or {}).get(DECISION_LABEL) == ctx.decision_id

    def _online(self, machine: str) -> bool:
        """Online repair: the tenant keeps its instance (``request-online-repair``), so the repair
        system claims nothing and releases nothing; it writes the machine's repair labels only."""
        return self.health is not None and any(r.source == ONLINE_REPAIR for r, _ in self._reports(machine))

    def _mark_in_progress(
        self, ctx: StepContext, machine: dict[str, Any], instance: str, changed: bool, online: bool = False
    ) -> StepResult:
        current = dict(machine.get("labels") or {})
        if L.repair_status(current) != "InProgress":
            ensure_allowed(ctx)
            labels = L.with_repair(current, "InProgress", f"decision {ctx.decision_id}")
            self.rest.set_machine_labels(ctx.node, labels)
            changed = True
        how = (
            f"online repair, tenant keeps instance {instance}"
            if online
            else f"claimed by repair instance {instance}"
        )
        return StepResult(
            f"{how}; repair_status InProgress",
            changed=changed,
            outputs={"instance_id": instance, "online": online},
        )

    def _finish(self, step: StepSpec, ctx: StepContext) -> StepResult:
        status = str(step.params.get("status", ""))
        if status not in ("Completed", "Failed"):
            raise PermanentError(f"finish needs params.status Completed or Failed, not {status!r}")
        machine = self.rest.machine(ctx.node)
        instance = machine.get("instanceId")
        if not instance:
            cleared = self._drop_evidence(ctx) if status == "Completed" else False
            return StepResult("repair instance already released", changed=cleared)
        online = self._online(ctx.node)
        if not online and not self._this_repair(machine, ctx):
            raise Refused(f"{ctx.node} is held by instance {instance}, not by this repair: not released")
        ensure_allowed(ctx)
        details = str(step.params.get("details") or _details(ctx, status))
        eta = step.params.get("eta")
        current = dict(machine.get("labels") or {})
        self.rest.set_machine_labels(
            ctx.node, L.with_repair(current, status, details, str(eta) if eta else None)
        )
        if not online:
            issue = None
            if status != "Completed":
                category = L.to_nico_category(str(step.params.get("category", "HARDWARE")))
                summary = f"Repair failed: {ctx.failure_class}"[:1024]
                issue = {"category": category, "summary": summary, "details": details[:1024]}
            self.rest.release_instance(instance, repair_tenant=True, issue=issue)
        if status == "Completed":
            self._drop_evidence(ctx)
        if online:
            after = "exits online repair" if status == "Completed" else "may release it for full repair"
            detail = (
                f"online repair: repair_status {status}; the tenant keeps instance {instance} and {after}"
            )
        else:
            detail = f"repair_status {status}; repair instance {instance} released"
        return StepResult(detail, outputs={"status": status, "online": online})

    def _drop_evidence(self, ctx: StepContext) -> bool:
        """After a completed repair the product's own report goes (only that source)."""
        if self.health is None or self._ours(ctx.node) is None:
            return False
        self.health.remove(ctx.node, self.cfg.source)
        return True


def _probe_id(failure_class: str) -> str:
    """``gpu_hardware`` -> ``BreakfixGpuHardware``: one alert id per class, so Merge updates it."""
    return "Breakfix" + "".join(p.capitalize() for p in (failure_class or "fault").split("_"))


def _same(a: Alert, b: Alert) -> bool:
    return (a.id, a.target) == (b.id, b.target) and a.fields().get("decision") == b.fields().get("decision")


def _details(ctx: StepContext, status: str) -> str:
    checks = ctx.outputs.get("validate", {})
    why = str(checks.get("detail", "")) or "; ".join(ctx.reasons)
    return f"{status}: {why}" if why else status
