"""Roles as data: which operations each role may call. The route table names one operation per route.

Kept as a plain mapping so a reviewer reads the whole authorisation model in one screen, and so the
403 message can name the roles that would have been allowed.
"""

from __future__ import annotations

from typing import Literal, get_args

from actuators.playbooks.model import ApproverRole

Role = Literal["viewer", "operator", "approver", "agent", "repair-tenant", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "approver", "agent", "repair-tenant", "admin")

READ = frozenset(
    {
        "nodes.list",
        "nodes.get",
        "decisions.list",
        "plans.get",
        "plans.list",
        "workflows.get",
        "workflows.list",
        "levers.get",
        "killswitch.get",
        "machines.get",
        "overrides.get",
        "audit.list",
        "runbooks.list",
        "tickets.list",
        "tickets.get",
        "sql.query",
    }
)

OPERATIONS: dict[Role, frozenset[str]] = {
    "viewer": READ,
    "operator": READ
    | {
        "plans.create",
        "plans.execute",
        "killswitch.set",
        "modes.set",
        "breaker.reset",
        "instances.release",
        "overrides.add",
        "overrides.remove",
        "tickets.create",
        "tickets.close",
    },
    # Approvers sign plans and decisions; they do not run them (the requester does, with the token).
    "approver": READ | {"plans.approve", "approvals.create"},
    # Seed 001's autonomy table: agents read, file tickets and create/execute plans (execution still
    # needs a human's approval token or a canary list); closing tickets and the levers need a human.
    "agent": READ | {"plans.create", "plans.execute", "tickets.create", "tickets.close"},
    # The NICo repair tenant releases machines it repaired and reads their records, nothing else.
    "repair-tenant": frozenset({"instances.release", "machines.get", "overrides.get"}),
    "admin": frozenset(),  # filled below: every operation any role has
}
OPERATIONS["admin"] = frozenset().union(*OPERATIONS.values())

APPROVER_ROLES: frozenset[str] = frozenset(get_args(ApproverRole))
"""Roles whose approval counts: a playbook's ``approval.role`` is one of them (the catalog is
validated against the same list), and ``admin`` holds every role."""


def allowed(role: str, operation: str) -> bool:
    return operation in OPERATIONS.get(role, frozenset())  # type: ignore[call-overload]


def roles_for(operation: str) -> list[str]:
    """The roles that may call ``operation``, for the 403 message."""
    return [r for r in ROLES if operation in OPERATIONS[r]]


def initiator_of(role: str) -> Literal["human", "agent"]:
    return "agent" if role == "agent" else "human"
