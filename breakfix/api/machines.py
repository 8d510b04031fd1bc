"""NICo's repair manual on the API: instance release with an optional issue report, repair-tenant
releases with ``repair_status``, and people's health-override edits (carbide-admin-cli's ``health-override``).

The rules themselves are :mod:`actuators.health.rules` (FAQ Q1-Q5); this module decides which rule
a call means, publishes the matching event (``tenant.report`` / ``repair.status``) so the pipeline
sees what the tenant saw, and stores the new record at once, so the machine leaves allocation
before the API answers.

This is for sites without NICo, where the product itself is the infrastructure controller. Where
NICo runs, NICo keeps the machines and overrides and the product acts as its repair system through
actuators/nico (docs/operate/nico.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from actuators.health import HealthOverrideActuator, Issue, MachineRecord, MachineStore, OverrideKind, rules
from actuators.health.actuator import describe
from breakfix.api.plans import Name
from breakfix.api.ports import Publisher
from breakfix.api.tokens import Principal
from schemas.events import RepairStatus, TenantReport

TEMPLATES = {"RequestRepair": OverrideKind.REPAIR_REQUEST, "OutForRepair": OverrideKind.OUT_FOR_REPAIR}


class IssueReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Literal["HARDWARE", "NETWORK", "PERFORMANCE", "OTHER"]
    summary: Annotated[str, Field(min_length=1, max_length=256)]
    details: Annotated[str, Field(max_length=8192)] = ""


class ReleaseRequest(BaseModel):
    """``instance_id`` (the manual also calls it ``id``); ``machine_id`` when the instance id is not
    the machine id."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    instance_id: Name = Field(validation_alias=AliasChoices("instance_id", "id"))
    machine_id: Name | None = None
    issue: IssueReport | None = None
    repair_status: Annotated[str, Field(max_length=64)] | None = None
    repair_details: Annotated[str, Field(max_length=8192)] = ""


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: Literal["RequestRepair", "OutForRepair"]
    message: Annotated[str, Field(min_length=1, max_length=4096)]


class MachineNotFound(LookupError):
    pass


def _outcome(out: rules.Outcome) -> dict[str, Any]:
    return {
        "machine": describe(out.record),
        "applied": [k.value for k in out.applied],
        "removed": [k.value for k in out.removed],
        "notes": list(out.notes),
    }


class MachineService:
    def __init__(
        self,
        store: MachineStore,
        health: HealthOverrideActuator,
        publisher: Publisher | None,
        events_topic: str,
        known: Any,
    ) -> None:
        """``known(machine_id) -> bool``: whether the inventory has the machine (records are created
        on first use for machines the inventory knows)."""
        self.store, self.health, self.publisher, self.events_topic = store, health, publisher, events_topic
        self.known = known

    def record(self, machine_id: str) -> MachineRecord:
        rec = self.store.get(machine_id)
        if rec is not None:
            return rec
        if not self.known(machine_id):
            raise MachineNotFound(f"machine {machine_id} is not in the inventory")
        return MachineRecord(machine_id=machine_id)

    def _publish(self, event: TenantReport | RepairStatus) -> str:
        if self.publisher is not None:
            self.publisher.publish_sealed(
                self.events_topic, event.node, event.model_dump(mode="json", exclude_none=True)
            )
        return event.id

    def release(self, body: ReleaseRequest, who: Principal, now: datetime) -> dict[str, Any]:
        machine = body.machine_id or body.instance_id
        rec = self.record(machine)
        repair = who.role == "repair-tenant" or body.repair_status is not None
        events: list[str] = []
        issue = None
        if body.issue is not None:
            report = TenantReport(
                id=f"release-{uuid.uuid4().hex}",
                source=f"api:{who.actor}",
                time=now,
                node=machine,
                data={"instance_id": body.instance_id, **body.issue.model_dump()},
            )
            events.append(self._publish(report))
            issue = Issue(reported_at=now, reporter=who.actor, **body.issue.model_dump())
        if repair:
            status = RepairStatus(
                id=f"release-{uuid.uuid4().hex}",
                source=f"api:{who.actor}",
                time=now,
                node=machine,
                data={
                    "repair_status": body.repair_status,
                    "repair_details": body.repair_details,
                    "instance_id": body.instance_id,
                },
            )
            events.append(self._publish(status))
            out = rules.repair_release(rec, body.repair_status, now, body.repair_details, issue)
        elif issue is not None:
            out = rules.tenant_report(rec, issue, self.health.auto_repair_enabled)
        else:
            out = rules.Outcome(rec, notes=("released without an issue report: no override changed",))
        self.store.put(out.record)
        return {**_outcome(out), "events": events, "repair_release": repair}

    def add(self, machine_id: str, body: OverrideRequest, who: Principal, now: datetime) -> dict[str, Any]:
        rec = self.record(machine_id)
        out = rules.add_override(rec, TEMPLATES[body.template], f"operator:{who.actor}", body.message, now)
        self.store.put(out.record)
        return _outcome(out)

    def remove(self, machine_id: str, name: OverrideKind, who: Principal) -> dict[str, Any]:
        rec = self.record(machine_id)
        if not rec.has(name):
            raise MachineNotFound(f"override {name.value} is not set on machine {machine_id}")
        out = rules.remove_override(rec, name, by_human=who.initiator == "human")
        self.store.put(out.record)
        return _outcome(out)
