"""Assemble an :class:`ApiContext` from real parts: a store, a Kafka publisher, a token table and a
state directory (the API's plans/approvals/workflows file, machine records, built-in tickets).

No actuator is wired here: an approved plan's steps go to the guard, signed, and the actuator stage
runs what the guard decides (:mod:`breakfix.api.plan_driver`). ``breakfix serve`` and the test
fixture both call :func:`build_context`, so the server under test is wired like the one users run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from actuators.health import HealthOverrideActuator, JsonMachineStore
from actuators.playbooks import Catalog, load_catalog
from actuators.tickets import JsonTicketStore, TicketService
from breakfix.api.approvals import TokenBook
from breakfix.api.audit import AuditLog
from breakfix.api.context import ApiContext, utc_now
from breakfix.api.control import ControlPublisher, ControlState
from breakfix.api.follower import ControlFollower
from breakfix.api.machines import MachineService
from breakfix.api.plan_driver import PlanDriver
from breakfix.api.planstore import PlanStore
from breakfix.api.ports import Publisher
from breakfix.api.sqlguard import Limits
from breakfix.api.state import StoreStateReader
from breakfix.api.statedb import StateDb
from breakfix.api.tokens import TokenTable
from breakfix.api.workflows import WorkflowBook
from policy.model import Policy, load_policy
from schemas.topics import Topic
from store.base import Store
from store.client_store import ClientStore


def _session(store: Store) -> Store:
    """A connection of its own to ``store``'s engine, with its database current."""
    return store.session() if isinstance(store, ClientStore) else store


@dataclass(frozen=True)
class Topics:
    events: str = Topic.EVENTS
    control: str = Topic.CONTROL
    audit: str = Topic.AUDIT
    proposals: str = Topic.PROPOSALS


@dataclass(frozen=True)
class Parts:
    """Shared parts the caller may also need (to close them)."""

    machines: JsonMachineStore
    health: HealthOverrideActuator
    tickets: TicketService
    control: ControlState
    state: StateDb
    """Plans, approval grants and workflow records (``api.db``)."""

    def close(self) -> None:
        self.state.close()


def make_parts(state_dir: Path, policy: Policy) -> Parts:
    state_dir.mkdir(parents=True, exist_ok=True)
    machines = JsonMachineStore(state_dir / "machines")
    return Parts(
        machines=machines,
        health=HealthOverrideActuator(machines, policy.auto_repair_enabled),
        tickets=TicketService(JsonTicketStore(state_dir / "tickets")),
        control=ControlState(frozenset(policy.exclusions.pools)),
        state=StateDb(state_dir / "api.db"),
    )


def build_context(
    store: Store,
    publisher: Publisher | None,
    tokens: TokenTable,
    parts: Parts,
    *,
    policy: Policy | None = None,
    catalog: Catalog | None = None,
    topics: Topics | None = None,
    approval_ttl: timedelta = timedelta(minutes=30),
    plan_ttl: timedelta = timedelta(hours=4),
    now: Callable[[], datetime] = utc_now,
    broker: str | None = None,
    sql_store: Store | None = None,
    sql_limits: Limits | None = None,
) -> ApiContext:
    """``broker``: the bootstrap servers to follow the control topic from (levers set by other
    API replicas or processes); the publisher's broker in practice. ``sql_store``: where ad-hoc SQL
    runs (a read-only user on a ClickHouse server), by default a session of ``store``."""
    policy = policy or load_policy()
    catalog = catalog or load_catalog()
    topics = topics or Topics()
    # Audit writes, the product's reads and ad-hoc SQL each have a connection and a lock: a slow
    # read never holds up the audit row every call (the kill switch's included) writes.
    lock = threading.Lock()
    reads = _session(store)
    reader = StoreStateReader(reads, threading.Lock(), _session(sql_store or store), sql_limits)
    parts.control.seed(reader.killswitches())
    if publisher is None:
        raise ValueError("the API needs a publisher for the control topic (pass --broker)")
    control = ControlPublisher(publisher, topics.control, parts.control)
    # A step the guard holds for capacity: it retires it after max_wait_s on its own clock; the
    # driver waits a quarter of an hour longer before it gives up on its own.
    workflows = PlanDriver(
        reader, publisher, topics.proposals, now, catalog, WorkflowBook(parts.state),
        hold_timeout_s=policy.max_wait_s + 900,
    )  # fmt: skip
    machines = MachineService(
        parts.machines,
        parts.health,
        publisher,
        topics.events,
        known=lambda m: reader.node(m, limit=1) is not None,
    )
    return ApiContext(
        reader=reader,
        audit=AuditLog(store, publisher, topics.audit, lock),
        control=control,
        workflows=workflows,
        machines=machines,
        tickets=parts.tickets,
        catalog=catalog,
        policy=policy,
        tokens=tokens,
        approvals=TokenBook(approval_ttl, parts.state),
        plans=PlanStore(parts.state),
        follower=ControlFollower(broker, topics.control, parts.control) if broker else None,
        plan_ttl=plan_ttl,
        now=now,
    )
