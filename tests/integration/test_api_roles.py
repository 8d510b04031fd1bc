"""Each role is refused (403, naming the roles that may) every operation it does not hold, and the
role table covers exactly the routes the OpenAPI document serves (deny by default otherwise)."""

from __future__ import annotations

import re

import httpx
import pytest

from breakfix.api.operations import OPERATIONS as TABLE
from breakfix.api.roles import OPERATIONS, ROLES
from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

pytestmark = pytest.mark.integration
api_server = fx.api_server  # the shared fixture, registered in this module

ROUTES: dict[str, tuple[str, str]] = {name: (op.method, op.path) for name, op in TABLE.items()}
REFUSALS = [(role, op) for role in ROLES for op in sorted(ROUTES) if op not in OPERATIONS[role]]


def test_the_operation_table_is_exactly_what_the_api_serves(api_server: ApiServer) -> None:
    """Every route is an operation of breakfix.api.operations under its own name, method and path,
    and every operation is served (FastAPI's operationId is the route name, path and method)."""
    assert set(ROUTES) == OPERATIONS["admin"]
    doc = httpx.get(api_server.url + "/openapi.json").json()
    served = {
        (m.upper(), p, spec["operationId"])
        for p, ops in doc["paths"].items()
        for m, spec in ops.items()
        if p != "/healthz"
    }
    expected = {
        (method, path, re.sub(r"\W", "_", f"{name}{path}") + f"_{method.lower()}")
        for name, (method, path) in ROUTES.items()
    }
    assert served == expected


@pytest.mark.parametrize(("role", "operation"), REFUSALS, ids=[f"{r}-{o}" for r, o in REFUSALS])
def test_role_is_refused_what_it_may_not_do(api_server: ApiServer, role: str, operation: str) -> None:
    method, template = ROUTES[operation]
    path = template.format(
        node="gpu-node-2",
        plan_id="plan-x",
        workflow_id="wf-x",
        machine_id="gpu-node-2",
        name="repair-request",
        ticket_id="BF-1",
    )
    r = httpx.request(method, api_server.url + path, headers=api_server.headers(role), json={}, timeout=30)
    assert r.status_code == 403, (role, operation, r.text)
    assert f"may not {operation}" in r.json()["detail"] and "admin" in r.json()["detail"]


def test_expected_refusals_for_the_autonomy_table() -> None:
    refused = set(REFUSALS)
    # The agents' autonomy rule: agents hold no lever and cannot approve (closing a ticket is refused
    # to them by the ticket service itself, as a non-human: see test_api_levers).
    assert {("agent", "killswitch.set"), ("agent", "plans.approve"), ("agent", "modes.set")} <= refused
    assert {
        ("viewer", "plans.create"),
        ("approver", "plans.execute"),
        ("operator", "plans.approve"),
    } <= refused
    assert ("repair-tenant", "nodes.list") in refused and (
        "repair-tenant",
        "instances.release",
    ) not in refused
    assert not [op for role, op in refused if role == "admin"]
