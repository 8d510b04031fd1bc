"""The product's one vocabulary: every word that crosses a module boundary, spelled once.

Node states (and those that take a node out of service), failure domains and classes, evidence
attributions, transition triggers, modes, actions, the operator's levers and their typed scopes.
Code compares against these members, never against retyped strings; SQL names them as
``${NodeState.QUARANTINED}`` in text rendered by :func:`sql` (or through :func:`sql_literal` and
:func:`sql_in`), so a renamed word changes every query with it. Topic names live beside them in
:mod:`schemas.topics` (the topic catalogue).

Each enum is a ``StrEnum``: a member *is* its wire string, so records, JSON and SQL keep the same
spelling as before and ``FailureClass.TENANT_REPORT == "tenant_report"`` holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class NodeState(StrEnum):
    """Lifecycle of a node (and of a GPU where evidence names one): Healthy → Suspect → Quarantined →
    Repairing → Validating → Healthy, or Escalated from any of them."""

    HEALTHY = "Healthy"
    SUSPECT = "Suspect"
    QUARANTINED = "Quarantined"
    REPAIRING = "Repairing"
    VALIDATING = "Validating"
    ESCALATED = "Escalated"


OUT_OF_SERVICE = frozenset({NodeState.QUARANTINED, NodeState.REPAIRING, NodeState.VALIDATING})
"""States in which the product holds a node out of allocation (capacity and MTTR count these)."""


class FailureDomain(StrEnum):
    """Where a fault lives. Fusion corroborates within a domain across independent sources."""

    GPU_HARDWARE = "gpu_hardware"
    GPU_MEMORY = "gpu_memory"
    THERMAL_POWER = "thermal_power"
    NVLINK_FABRIC = "nvlink_fabric"
    NETWORK = "network"
    NODE_OS = "node_os"
    CONTAINER_RUNTIME = "container_runtime"
    WORKLOAD_SYMPTOM = "workload_symptom"
    MONITORING = "monitoring"


class FailureClass(StrEnum):
    """What a proposal or decision is about: a failure domain, or one of the two causes fusion names
    that are not a domain (a tenant's report, a regression attributed to a change).

    A fleet incident is not a class: it is the guard's *action* on a blast radius
    (``ActionKind.FLEET_INCIDENT``), and the incident decision keeps the class of the proposal that
    tripped it. Policies, playbooks and the API accept exactly these values.

    >>> FailureClass.of(FailureDomain.THERMAL_POWER) is FailureClass.THERMAL_POWER
    True
    >>> len(FailureClass)
    11
    """

    GPU_HARDWARE = "gpu_hardware"
    GPU_MEMORY = "gpu_memory"
    THERMAL_POWER = "thermal_power"
    NVLINK_FABRIC = "nvlink_fabric"
    NETWORK = "network"
    NODE_OS = "node_os"
    CONTAINER_RUNTIME = "container_runtime"
    WORKLOAD_SYMPTOM = "workload_symptom"
    MONITORING = "monitoring"
    TENANT_REPORT = "tenant_report"
    CHANGE_REGRESSION = "change_regression"

    @classmethod
    def of(cls, domain: FailureDomain) -> FailureClass:
        """The class of a fault in ``domain`` (every domain is a class of the same name)."""
        return cls(domain.value)


FAILURE_CLASSES: tuple[str, ...] = tuple(c.value for c in FailureClass)
"""The class names in declaration order, for messages that list what is accepted."""


class Attribution(StrEnum):
    """Who a piece of evidence blames. Only ``hardware`` and ``tenant`` evidence can move a node toward
    quarantine; the rest are kept for the audit trail and for incident/rollback decisions."""

    HARDWARE = "hardware"
    APPLICATION = "application"
    CHANGE = "change"
    SYMPATHETIC = "sympathetic"
    MONITORING = "monitoring"
    TENANT = "tenant"


ACTIONABLE_ATTRIBUTIONS = frozenset({Attribution.HARDWARE, Attribution.TENANT})
"""Attributions whose evidence may lead to a quarantine."""


class Trigger(StrEnum):
    """The named reason of a node-state transition (``Decision.trigger``). Producers outside the
    product (the naive scorer's ``naive:<rule>``) may use other words; the product's own are these."""

    # evidence and time (policy/lifecycle.py)
    DECISIVE_SIGNAL = "decisive_signal"
    CONFIDENCE_OVER_THRESHOLD = "confidence_over_threshold"
    EVIDENCE_RISING = "evidence_rising"
    CHANGE_ATTRIBUTED = "change_attributed"
    JOB_FAULT = "job_fault"
    """A node's report of a crashed job (application Xids on its GPUs): a job-level finding, never a
    transition; the guard folds every node's report of one job into one finding."""
    AGENT_SILENT = "agent_silent"
    EVIDENCE_CLEARED = "evidence_cleared"
    CLEARED_WITHOUT_ACTION = "cleared_without_action"
    REPEAT_OFFENDER = "repeat_offender"
    RETRY_BUDGET_EXHAUSTED = "retry_budget_exhausted"
    FAULT_RECURRED_DURING_VALIDATION = "fault_recurred_during_validation"
    RETURNED_TO_SERVICE = "returned_to_service"
    EXPIRED_WHILE_WAITING = "expired_while_waiting"
    # action results and repair status
    REPAIR_STARTED = "repair_started"
    REPAIR_COMPLETED = "repair_completed"
    REPAIR_FAILED = "repair_failed"
    VALIDATION_FAILED = "validation_failed"
    TENANT_REPORTED_ISSUE = "tenant_reported_issue"
    REPAIR_REPORTED_COMPLETED = "repair_reported_completed"
    REPAIR_NOT_COMPLETED = "repair_not_completed"
    # the guard's own decisions (policy/guard.py)
    BLAST_RADIUS = "blast_radius"
    BACKLOG_DISCARDED = "backlog_discarded"
    OPERATOR_PLAN = "operator_plan"
    """An approved operator repair plan's step for one node, submitted by the API and judged by the
    guard like any proposal (the plan's approvals stand for the class's mode)."""
    CAPACITY_WAIT_EXPIRED = "capacity_wait_expired"


QUARANTINE_TRIGGERS = frozenset({Trigger.DECISIVE_SIGNAL, Trigger.CONFIDENCE_OVER_THRESHOLD})
"""Triggers of a proposal to quarantine a node on its evidence."""


class Mode(StrEnum):
    """How far automation may go for a failure class: shadow (log only) < recommend (a human acts) <
    auto (actuators execute)."""

    SHADOW = "shadow"
    RECOMMEND = "recommend"
    AUTO = "auto"


class ActionKind(StrEnum):
    """Actions on the ladder, cheapest first, plus the non-mutating outcomes."""

    NONE = "none"
    OBSERVE = "observe"
    GPU_RESET = "gpu_reset"
    REBOOT = "reboot"
    DRAIN = "drain"
    REIMAGE = "reimage"
    RMA = "rma"
    TICKET = "ticket"
    ROLLBACK_CHANGE = "rollback_change"
    FLEET_INCIDENT = "fleet_incident"
    VALIDATE = "validate"
    RETURN_TO_SERVICE = "return_to_service"


class ControlKind(StrEnum):
    """The operator's levers on the control topic (their scopes and values: ``schemas.control``)."""

    KILLSWITCH = "killswitch"
    APPROVAL = "approval"
    MODE = "mode"
    BREAKER_RESET = "breaker_reset"
    EMERGENCY = "emergency"
    EXCLUSION = "exclusion"


# --- control scopes ------------------------------------------------------------------------------


class ScopeKind(StrEnum):
    """What a lever applies to. On the wire a scope is ``global`` or ``<kind>:<name>``."""

    GLOBAL = "global"
    POOL = "pool"
    CLASS = "class"
    NODE = "node"
    DECISION = "decision"


@dataclass(frozen=True, order=True)
class Scope:
    """A lever's typed scope; ``str(scope)`` is its wire form (the control topic's key suffix).

    >>> Scope.parse("pool:train") == Scope.pool("train")
    True
    >>> str(Scope.decision("d-42")), str(GLOBAL)
    ('decision:d-42', 'global')
    >>> Scope.parse("rack:r1")
    Traceback (most recent call last):
    ...
    ValueError: unknown scope 'rack:r1': use global, pool:<name>, class:<name>, node:<name>, decision:<name>
    """

    kind: ScopeKind
    name: str = ""

    def __post_init__(self) -> None:
        if (self.kind is ScopeKind.GLOBAL) != (self.name == ""):
            raise ValueError(f"scope {self.kind.value!r} {'takes no' if self.name else 'needs a'} name")

    def __str__(self) -> str:
        return self.kind.value if self.kind is ScopeKind.GLOBAL else f"{self.kind.value}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, sep, name = text.partition(":")
        try:
            scope_kind = ScopeKind(kind)
        except ValueError:
            scope_kind = None
        if scope_kind is None or (scope_kind is ScopeKind.GLOBAL) == bool(sep) or (sep and not name):
            shapes = ", ".join(k.value if k is ScopeKind.GLOBAL else f"{k.value}:<name>" for k in ScopeKind)
            raise ValueError(f"unknown scope {text!r}: use {shapes}")
        return cls(scope_kind, name)

    @classmethod
    def pool(cls, name: str) -> Scope:
        return cls(ScopeKind.POOL, name)

    @classmethod
    def node(cls, name: str) -> Scope:
        return cls(ScopeKind.NODE, name)

    @classmethod
    def decision(cls, decision_id: str) -> Scope:
        return cls(ScopeKind.DECISION, decision_id)

    @classmethod
    def failure_class(cls, name: str) -> Scope:
        return cls(ScopeKind.CLASS, name)


GLOBAL = Scope(ScopeKind.GLOBAL)


# --- SQL -----------------------------------------------------------------------------------------


def sql_literal(word: str) -> str:
    """A vocabulary word as a ClickHouse string literal (quotes and backslashes escaped).

    >>> sql_literal(FailureClass.TENANT_REPORT)
    "'tenant_report'"
    """
    escaped = str(word).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def sql_in(words: Iterable[str]) -> str:
    """A parenthesised list of literals for ``IN``, in a stable (sorted) order.

    >>> sql_in([Attribution.TENANT, Attribution.HARDWARE])
    "('hardware', 'tenant')"
    """
    return "(" + ", ".join(sql_literal(w) for w in sorted(str(w) for w in words)) + ")"


_WORDS: dict[str, type[StrEnum]] = {
    e.__name__: e
    for e in (NodeState, FailureDomain, FailureClass, Attribution, Trigger, Mode, ActionKind, ControlKind)
}
_TOKEN = re.compile(r"\$\{(\w+)\.(\w+)\}")


def sql(text: str) -> str:
    """SQL text with each ``${Enum.MEMBER}`` token replaced by that member's literal, so queries name
    vocabulary words the way code does and a misspelt one fails when its module is imported. Other
    placeholders (``$db``, ClickHouse's ``{name:Type}`` parameters) are left alone.

    >>> sql("WHERE to_state = ${NodeState.QUARANTINED} AND mode != ${Mode.SHADOW} AND node = {n:String}")
    "WHERE to_state = 'Quarantined' AND mode != 'shadow' AND node = {n:String}"
    >>> sql("${NodeState.BROKEN}")
    Traceback (most recent call last):
    ...
    ValueError: ${NodeState.BROKEN} names no vocabulary word
    """

    def word(m: re.Match[str]) -> str:
        enum = _WORDS.get(m.group(1))
        if enum is None or m.group(2) not in enum.__members__:
            raise ValueError(f"{m.group(0)} names no vocabulary word")
        return sql_literal(enum[m.group(2)])

    return _TOKEN.sub(word, text)
