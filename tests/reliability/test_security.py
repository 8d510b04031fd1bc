"""Authorization and approval tokens over the real HTTP API (``api_server`` fixture).

The matrix is every role x every mutating route the app serves, expected from ``breakfix.api.roles``
(the data the API enforces). Because a matrix derived from that data would pass whatever the data
says, a hard-coded list of cells that must be refused whatever the roles table holds runs with real
request bodies: if someone widened a role, those fail.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from reliability.figures import record

from breakfix.api.roles import OPERATIONS, ROLES, allowed
from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

pytestmark = pytest.mark.integration
api_server = fx.api_server
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _operation(op_id: str, path: str, method: str) -> str:
    """The route name (the roles table's operation) behind a FastAPI-generated operationId."""
    for op in OPERATIONS["admin"]:
        if re.sub(r"\W", "_", op + path) + "_" + method.lower() == op_id:
            return op
    raise AssertionError(f"{method} {path}: operation {op_id!r} is in no role's table")


def _routes(api: ApiServer) -> list[tuple[str, str, str]]:
    """(method, path with placeholders filled, operation name) of every mutating route, read from the
    served OpenAPI document."""
    doc = httpx.get(api.url + "/openapi.json", headers=api.headers("viewer"), timeout=30).json()
    out = []
    for path, item in doc["paths"].items():
        for method, spec in item.items():
            if method.upper() in MUTATING:
                filled = re.sub(r"\{(\w+)\}", r"no-such-\1", path)
                out.append((method.upper(), filled, _operation(spec["operationId"], path, method)))
    return out


def call(api: ApiServer, method: str, path: str, role: str | None, body: Any = None) -> httpx.Response:
    headers = api.headers(role) if role else {}
    return httpx.request(method, api.url + path, headers=headers, json=body, timeout=30)


def test_every_role_on_every_mutating_route_is_refused_exactly_where_roles_say(api_server: ApiServer) -> None:
    routes = _routes(api_server)
    assert len(routes) >= 10, "the route table must be found, or the matrix proves nothing"
    refused, passed, wrong = 0, 0, []
    for method, path, op in routes:
        anon = call(api_server, method, path, None, {})
        if anon.status_code != 401:
            wrong.append(f"anonymous {method} {path}: {anon.status_code}")
        for role in ROLES:
            # An empty body: authorisation is decided before validation, so an allowed role gets a
            # 4xx about the body and never mutates anything here.
            r = call(api_server, method, path, role, {})
            assert r.status_code < 500, f"{role} {method} {path}: {r.status_code} {r.text}"
            if allowed(role, op):
                passed += 1
                if r.status_code in (401, 403):
                    wrong.append(f"{role} {method} {path} ({op}) refused: {r.text}")
            else:
                refused += 1
                if r.status_code != 403:
                    wrong.append(f"{role} {method} {path} ({op}) not refused: {r.status_code}")
    assert not wrong, "\n".join(wrong)
    assert refused > 0 and passed > 0
    record(
        "security.authorization_matrix",
        roles=len(ROLES),
        mutating_routes=len(routes),
        cells=len(routes) * len(ROLES),
        refused_as_expected=refused,
        allowed_as_expected=passed,
        anonymous_refused=len(routes),
        server_errors=0,
    )


# Cells that must be refused whatever breakfix/api/roles.py says (hard-coded on purpose).
MUST_REFUSE = [
    ("viewer", "POST", "/killswitch", {"on": True, "reason": "x"}),
    ("agent", "POST", "/killswitch", {"on": False, "reason": "x"}),
    ("repair-tenant", "POST", "/killswitch", {"on": False, "reason": "x"}),
    ("agent", "POST", "/modes", {"failure_class": "gpu_hardware", "mode": "auto", "reason": "x"}),
    ("agent", "POST", "/breaker/reset", {"reason": "x"}),
    ("viewer", "POST", "/repair-plans", {"pool": "train", "dry_run": False}),
]


@pytest.mark.parametrize(("role", "method", "path", "body"), MUST_REFUSE)
def test_must_refuse_cells(api_server: ApiServer, role: str, method: str, path: str, body: Any) -> None:
    before = call(api_server, "GET", "/killswitch", "viewer").json()
    r = call(api_server, method, path, role, body)
    assert r.status_code == 403, r.text
    assert call(api_server, "GET", "/killswitch", "viewer").json() == before


def _plan(api: ApiServer, role: str = "operator", node: str = "gpu-node-3") -> dict[str, Any]:
    body = {"pool": "train", "dry_run": False, "failure_class": "gpu_hardware", "action": "gpu_reset"}
    r = call(api, "POST", "/repair-plans", role, {**body, "nodes": [node]})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _execute(api: ApiServer, plan_id: str, role: str = "operator", **body: Any) -> httpx.Response:
    return call(api, "POST", f"/repair-plans/{plan_id}/execute", role, body)


def test_agent_cannot_execute_without_a_token_nor_close_a_ticket(api_server: ApiServer) -> None:
    calls = list(api_server.agent.calls)
    p = _plan(api_server, role="agent", node="gpu-node-2")
    r = _execute(api_server, p["id"], role="agent")
    assert r.status_code == 403 and "0 of 1 approval(s)" in r.json()["detail"]
    assert call(api_server, "POST", f"/repair-plans/{p['id']}/approve", "agent", {}).status_code == 403
    ticket = call(api_server, "POST", "/tickets", "agent", {"node": "gpu-node-2", "summary": "s"})
    key = ticket.json()["ticket"]["key"]
    closed = call(api_server, "POST", f"/tickets/{key}/close", "agent", {"resolution": "fixed"})
    assert closed.status_code == 403, closed.text
    assert call(api_server, "GET", f"/tickets/{key}", "viewer").json()["status"] != "closed"
    assert api_server.agent.calls == calls, "a refused execute reached an actuator"


def test_approval_tokens_replayed_expired_or_bound_to_another_plan_are_refused(api_server: ApiServer) -> None:
    a, b = _plan(api_server), _plan(api_server)
    token_a = call(api_server, "POST", f"/repair-plans/{a['id']}/approve", "approver", {}).json()
    token_b = call(api_server, "POST", f"/repair-plans/{b['id']}/approve", "approver", {}).json()
    foreign = _execute(api_server, b["id"], approval_token=token_a["approval_token"])
    assert foreign.status_code == 403, foreign.text
    api_server.clock.advance(11 * 60)  # the fixture's token TTL is 10 minutes
    try:
        expired = _execute(api_server, b["id"], approval_token=token_b["approval_token"])
    finally:
        api_server.clock.reset()
    assert expired.status_code in (403, 410), expired.text
    first = _execute(api_server, a["id"], approval_token=token_a["approval_token"], concurrency=1)
    assert first.status_code == 200, first.text
    replayed = _execute(api_server, a["id"], approval_token=token_a["approval_token"])
    assert replayed.status_code in (403, 409), replayed.text
    record(
        "security.approval_tokens",
        foreign_plan=foreign.status_code,
        expired=expired.status_code,
        replayed=replayed.status_code,
        first_use=first.status_code,
    )


# MCP: each mutating tool is one API operation made with the caller's token.
TOOL_OPERATION = {
    "create_ticket": "tickets.create",
    "close_ticket": "tickets.close",
    "create_repair_plan": "plans.create",
    "execute_repair_plan": "plans.execute",
}
HUMAN_ONLY = {("agent", "close_ticket")}
"""Refused whatever the roles table says (hard-coded): an agent never closes a ticket."""


def test_every_role_on_every_mutating_mcp_tool(api_server: ApiServer) -> None:
    import anyio
    from mcp import Client

    from breakfix.mcptools.autonomy import policies
    from breakfix.mcptools.server import build_server
    from breakfix.opsclient import ApiTarget

    assert set(TOOL_OPERATION) == {n for n, p in policies().items() if not p.read_only}
    nodes = [*fx.TRAIN, *fx.INFER]
    assert len(nodes) >= len(ROLES)
    tickets = {  # one open ticket per role (tickets are one per node), so no close hides another
        role: call(api_server, "POST", "/tickets", "operator", {"node": node, "summary": "mcp"}).json()[
            "ticket"
        ]["key"]
        for role, node in zip(ROLES, nodes, strict=False)
    }
    plan_id = _plan(api_server)["id"]
    args: dict[str, dict[str, Any]] = {
        "create_ticket": {"node": "inf-node-2", "summary": "mcp matrix"},
        "create_repair_plan": {"pool": "train", "failure_class": "gpu_hardware", "dry_run": True},
        "execute_repair_plan": {"plan_id": plan_id},  # no approval token: refused for everyone
    }
    calls = list(api_server.agent.calls)

    async def outcome(role: str, tool: str) -> tuple[bool, str]:
        server = build_server(ApiTarget(api_server.url, api_server.tokens[role]))
        given = args.get(tool) or {"ticket_id": tickets[role], "resolution": "matrix"}
        async with Client(server) as client:
            res = await client.call_tool(tool, given)
        body = "\n".join(getattr(c, "text", "") for c in res.content)
        return bool(res.is_error) and "HTTP 403" in body, body

    wrong, refused = [], 0
    for role in ROLES:
        for tool in TOOL_OPERATION:
            was_refused, body = anyio.run(outcome, role, tool)
            expect = (
                not allowed(role, TOOL_OPERATION[tool])
                or (role, tool) in HUMAN_ONLY
                or tool == "execute_repair_plan"
            )
            refused += was_refused
            if was_refused != expect:
                wrong.append(f"{role} {tool}: refused={was_refused}, expected {expect}: {body[:200]}")
    assert not wrong, "\n".join(wrong)
    assert api_server.agent.calls == calls, "a refused execute reached an actuator"
    record("security.mcp_matrix", roles=len(ROLES), mutating_tools=len(TOOL_OPERATION), refused=refused)
