"""A small typed client for the operator HTTP API (the route table of ``breakfix serve``).

Each method is one operation of ``breakfix.api.operations``, called by name, so a route's method
and path are written once, in that table. The CLI verbs and the MCP tools both go through it, so a
call looks the same on the wire, is checked against the same roles and lands in the same audit log
whoever makes it; answers are the API's JSON, untouched, because the API owns the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from breakfix.api.operations import OPERATIONS, Operation
from breakfix.opsclient.config import ApiTarget
from breakfix.opsclient.durations import since_param
from breakfix.opsclient.errors import ApiError, detail_text, hint_for

JSON = dict[str, Any]
Surface = Literal["cli", "mcp"]
Template = Literal["RequestRepair", "OutForRepair"]
Mode = Literal["shadow", "recommend", "auto"]
Rollback = Literal["on_failure", "none"]

_UNREACHABLE_HINT = (
    "start the local stack with `breakfix up` (or `breakfix serve`), or point --server / "
    "BREAKFIX_API_URL at a running API"
)
MORE_HEADER = "X-Breakfix-More"


@dataclass(frozen=True)
class Page:
    rows: list[JSON]
    more: bool
    """The API had more rows than the limit asked for."""


def _operation(name: str) -> Operation:
    op = OPERATIONS.get(name)
    if op is None:
        raise ApiError(f"no operation {name!r}", hint="list them with `breakfix call --list`")
    return op


class OpsClient:
    """Synchronous on purpose: CLI verbs are one call each, and MCP tools run in worker threads."""

    def __init__(
        self,
        target: ApiTarget,
        *,
        surface: Surface = "cli",
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers: dict[str, str] = {"X-Breakfix-Surface": surface}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        self.target = target
        self._http = httpx.Client(base_url=target.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One call; any answer other than 2xx becomes an ApiError carrying the API's own message."""
        return self._call(method, path, params, body)[0]

    def call(self, operation: str, args: dict[str, Any] | None = None) -> Any:
        """Any operation by its name in ``breakfix.api.operations``: its path parameters are taken
        from ``args``, the rest is the query (GET, DELETE) or the JSON body (POST)."""
        op = _operation(operation)
        args = dict(args or {})
        missing = [p for p in op.path_params if p not in args]
        if missing:
            raise ApiError(f"{operation} needs {', '.join(missing)}", hint=f"pass --arg {missing[0]}=VALUE")
        rest = {k: v for k, v in args.items() if k not in op.path_params}
        if op.method == "POST":
            return self.request(op.method, op.url(args), body=rest)
        return self.request(op.method, op.url(args), params=rest)

    def page(self, operation: str, params: dict[str, Any] | None = None) -> Page:
        """A list operation: its rows and whether the API had more than the limit (``X-Breakfix-More``)."""
        data, headers = self._call("GET", _operation(operation).path, params, None)
        return Page(list(data), headers.get(MORE_HEADER, "false") == "true")

    def _call(
        self, method: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> tuple[Any, httpx.Headers]:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self._http.request(method, path, params=query or None, json=body)
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"the API at {self.target.url} did not answer in time ({exc})", hint=_UNREACHABLE_HINT
            ) from exc
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach the API at {self.target.url} ({exc})", hint=_UNREACHABLE_HINT
            ) from exc
        try:
            data: Any = resp.json()
        except ValueError:
            data = resp.text
        if resp.is_success:
            return data, resp.headers
        detail = detail_text(data, f"HTTP {resp.status_code}")
        raise ApiError(detail, status=resp.status_code, hint=hint_for(resp.status_code, detail))

    # nodes and decisions
    def list_nodes(
        self, pool: str | None = None, state: str | None = None, limit: int | None = None
    ) -> list[JSON]:
        return list(self.call("nodes.list", {"pool": pool, "state": state, "limit": limit}))

    def get_node(self, node: str) -> JSON:
        return dict(self.call("nodes.get", {"node": node}))

    def list_decisions(
        self, node: str | None = None, since: str | None = None, limit: int | None = None
    ) -> list[JSON]:
        return self.decisions_page(node, since, limit).rows

    def decisions_page(
        self, node: str | None = None, since: str | None = None, limit: int | None = None
    ) -> Page:
        """``since``: an RFC 3339 time or a duration such as ``1h``."""
        return self.page("decisions.list", {"node": node, "since": since_param(since), "limit": limit})

    # repair plans and workflows
    def create_plan(
        self,
        pool: str,
        failure_class: str,
        *,
        nodes: list[str] | None = None,
        selector: dict[str, Any] | None = None,
        action: str | None = None,
        dry_run: bool = True,
    ) -> JSON:
        body: JSON = {"pool": pool, "failure_class": failure_class, "dry_run": dry_run}
        if nodes:
            body["nodes"] = nodes
        if selector:
            body["selector"] = selector
        if action:
            body["action"] = action
        return dict(self.call("plans.create", body))

    def get_plan(self, plan_id: str) -> JSON:
        return dict(self.call("plans.get", {"plan_id": plan_id}))

    def approve_plan(self, plan_id: str, comment: str | None = None) -> JSON:
        body = {"comment": comment} if comment else {}
        return dict(self.call("plans.approve", {"plan_id": plan_id, **body}))

    def execute_plan(
        self,
        plan_id: str,
        approval_token: str | None = None,
        *,
        concurrency: int = 1,
        rollback_policy: Rollback = "on_failure",
    ) -> JSON:
        body: JSON = {"concurrency": concurrency, "rollback_policy": rollback_policy}
        if approval_token:
            body["approval_token"] = approval_token
        return dict(self.call("plans.execute", {"plan_id": plan_id, **body}))

    def list_plans(self, limit: int = 50) -> Page:
        return self.page("plans.list", {"limit": limit})

    def list_workflows(self, limit: int = 50) -> Page:
        return self.page("workflows.list", {"limit": limit})

    def levers(self, kind: str | None = None) -> list[JSON]:
        """The latest value of every lever set (kill switch, mode, exclusion, emergency, ...)."""
        return list(self.call("levers.get", {"kind": kind}))

    def get_workflow(self, workflow_id: str) -> JSON:
        return dict(self.call("workflows.get", {"workflow_id": workflow_id}))

    # operator levers
    def get_killswitch(self) -> JSON:
        return dict(self.call("killswitch.get"))

    def set_killswitch(self, on: bool, reason: str, pool: str | None = None) -> Any:
        body: JSON = {"on": on, "reason": reason}
        if pool:
            body["pool"] = pool
        return self.call("killswitch.set", body)

    def set_mode(self, failure_class: str, mode: Mode, reason: str) -> Any:
        return self.call("modes.set", {"failure_class": failure_class, "mode": mode, "reason": reason})

    def approve_decision(
        self,
        decision_id: str,
        reason: str,
        node: str | None = None,
        failure_class: str | None = None,
        action: str | None = None,
    ) -> Any:
        body: JSON = {"decision_id": decision_id, "reason": reason}
        body.update({k: v for k, v in (("node", node), ("failure_class", failure_class),
                                        ("action", action)) if v})  # fmt: skip
        return self.call("approvals.create", body)

    def reset_breaker(self, resolution: Literal["discard_backlog", "resume"], reason: str) -> Any:
        return self.call("breaker.reset", {"resolution": resolution, "reason": reason})

    # NICo-style machines and health overrides
    def release_instance(
        self, instance_id: str, issue: JSON | None = None, repair_status: str | None = None
    ) -> Any:
        body: JSON = {"instance_id": instance_id}
        if issue:
            body["issue"] = issue
        if repair_status:
            body["repair_status"] = repair_status
        return self.call("instances.release", body)

    def get_machine(self, machine_id: str) -> JSON:
        return dict(self.call("machines.get", {"machine_id": machine_id}))

    def list_health_overrides(self, machine_id: str) -> Any:
        return self.call("overrides.get", {"machine_id": machine_id})

    def add_health_override(self, machine_id: str, template: Template, message: str) -> Any:
        return self.call(
            "overrides.add", {"machine_id": machine_id, "template": template, "message": message}
        )

    def remove_health_override(self, machine_id: str, name: str) -> Any:
        return self.call("overrides.remove", {"machine_id": machine_id, "name": name})

    # audit, runbooks, tickets, SQL
    def list_audit(
        self, actor: str | None = None, since: str | None = None, limit: int | None = None
    ) -> list[JSON]:
        return self.audit_page(actor, since, limit).rows

    def audit_page(
        self, actor: str | None = None, since: str | None = None, limit: int | None = None
    ) -> Page:
        """``since``: an RFC 3339 time or a duration such as ``1h``."""
        return self.page("audit.list", {"actor": actor, "since": since_param(since), "limit": limit})

    def list_runbooks(self) -> list[JSON]:
        return list(self.call("runbooks.list"))

    def list_tickets(self, node: str | None = None, limit: int = 50) -> list[JSON]:
        params: dict[str, Any] = {"limit": limit}
        if node:
            params["node"] = node
        return list(self.call("tickets.list", params))

    def get_ticket(self, ticket_id: str) -> JSON:
        return dict(self.call("tickets.get", {"ticket_id": ticket_id}))

    def create_ticket(self, node: str, summary: str, details: str = "") -> JSON:
        return dict(self.call("tickets.create", {"node": node, "summary": summary, "details": details}))

    def close_ticket(self, ticket_id: str, resolution: str) -> JSON:
        return dict(self.call("tickets.close", {"ticket_id": ticket_id, "resolution": resolution}))

    def sql(self, query: str) -> Any:
        return self.call("sql.query", {"query": query})

    def metrics(self) -> str:
        return str(self.request("GET", "/metrics"))
