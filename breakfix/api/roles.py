"""Roles as data: which operations each role may call. The route table names one operation per route.

Each operation lists the roles it grants in ``breakfix.api.operations`` (with why each role holds
what it holds); this module turns that into the role -> operations mapping the auth layer checks and
the 403 message quotes (the roles that would have been allowed).
"""

from __future__ import annotations

from typing import Literal, get_args

from actuators.playbooks.model import ApproverRole
from breakfix.api.operations import OPERATIONS as TABLE

Role = Literal["viewer", "operator", "approver", "agent", "repair-tenant", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "approver", "agent", "repair-tenant", "admin")

OPERATIONS: dict[Role, frozenset[str]] = {
    role: frozenset(name for name, op in TABLE.items() if role in op.roles) for role in ROLES
}
OPERATIONS["admin"] = frozenset(TABLE)  # admin holds every operation

READ = OPERATIONS["viewer"]
"""What every reading role holds (the viewer's whole grant)."""

APPROVER_ROLES: frozenset[str] = frozenset(get_args(ApproverRole))
"""Roles whose approval counts: a playbook's ``approval.role`` is one of them (the catalog is
validated against the same list), and ``admin`` holds every role."""


def allowed(role: str, operation: str) -> bool:
    """Read from the operation table itself, so an operation registered later (a plugin's) is
    judged like the rest; an operation nobody registered is refused to everyone."""
    op = TABLE.get(operation)
    return op is not None and (role == "admin" or role in op.roles)


def roles_for(operation: str) -> list[str]:
    """The roles that may call ``operation``, for the 403 message."""
    return [r for r in ROLES if allowed(r, operation)]


def initiator_of(role: str) -> Literal["human", "agent"]:
    return "agent" if role == "agent" else "human"
