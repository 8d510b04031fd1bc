"""The machine record in the style of NICo (NICo's repair manual): health overrides, repair labels, issue log.

A machine with any health override is not allocatable. Each override remembers who set it
(``source``): ``breakfix`` when this product set it, ``operator:<name>`` when a person did, so the
product can lift exactly what it set and nothing else.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from actuators.base import OWNER


class OverrideKind(StrEnum):
    TENANT_REPORTED_ISSUE = "tenant-reported-issue"
    """Documents a reported problem; blocks allocation until resolved."""
    REPAIR_REQUEST = "repair-request"
    """Signals the repair system to claim the machine; consumed when the repair tenant releases it."""
    OUT_FOR_REPAIR = "out-for-repair"
    """Escalated: automation gave up, operations (or the vendor) own the machine now."""


class HealthOverride(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: OverrideKind
    source: Annotated[str, Field(min_length=1, max_length=200)]
    message: Annotated[str, Field(max_length=4096)] = ""
    set_at: datetime
    decision_id: str | None = None

    @property
    def ours(self) -> bool:
        return self.source == OWNER


class Issue(BaseModel):
    """One reported problem (tenant release with an issue, or a repair tenant's new finding)."""

    model_config = ConfigDict(frozen=True)

    category: str
    summary: str
    details: str = ""
    reported_at: datetime
    reporter: str = "tenant"


class MachineRecord(BaseModel):
    machine_id: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]
    overrides: dict[OverrideKind, HealthOverride] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    """Repair tenant's metadata as last released: repair_status, repair_details, repair_eta."""
    issues: list[Issue] = Field(default_factory=list)
    auto_repair_used: bool = False
    """An automatic repair-request was already raised for the current problem: never raise another
    until the machine is healthy again or a person steps in (no infinite repair loops)."""
    claimed_by: str | None = None
    claimed_at: datetime | None = None

    @property
    def available(self) -> bool:
        """Allocatable: no health override at all (every one of the three kinds blocks allocation)."""
        return not self.overrides

    def has(self, kind: OverrideKind) -> bool:
        return kind in self.overrides
