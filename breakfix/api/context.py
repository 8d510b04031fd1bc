"""Everything the API needs, bundled and injected: :func:`breakfix.api.app.create_app` builds routes
over an :class:`ApiContext`; ``breakfix serve`` (:mod:`breakfix.api.wiring`) and the tests make one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from actuators.playbooks import Catalog
from actuators.tickets import TicketService
from breakfix.api.approvals import TokenBook
from breakfix.api.audit import AuditLog
from breakfix.api.control import ControlPublisher
from breakfix.api.follower import ControlFollower
from breakfix.api.machines import MachineService
from breakfix.api.plan_driver import PlanDriver
from breakfix.api.planstore import PlanStore
from breakfix.api.ports import StateReader
from breakfix.api.tokens import TokenTable
from policy.model import Policy


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiContext:
    reader: StateReader
    audit: AuditLog
    control: ControlPublisher
    workflows: PlanDriver
    """Submits approved plans' steps to the guard and follows them through the store."""
    machines: MachineService
    tickets: TicketService
    catalog: Catalog
    policy: Policy
    tokens: TokenTable
    approvals: TokenBook
    plans: PlanStore
    follower: ControlFollower | None = None
    """Follows the control topic while the app runs (None: this API sees only its own levers)."""
    plan_ttl: timedelta = timedelta(hours=4)
    now: Callable[[], datetime] = utc_now
