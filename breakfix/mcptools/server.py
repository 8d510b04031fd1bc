"""The MCP server: the operator API's capabilities as tools for agent frameworks.

Every tool is one API call made with the agent's token, so roles, approvals and the audit log apply
exactly as they do to a person at the CLI; nothing here decides what an agent may do. Tool
descriptions and annotations carry the autonomy table so an agent knows in advance which calls need
a human.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

from breakfix.api.operations import OPERATIONS
from breakfix.mcptools.autonomy import describe, policies
from breakfix.mcptools.backend import ApiBackend
from breakfix.opsclient import ApiTarget

F = TypeVar("F", bound=Callable[..., Any])


def _version() -> str:
    try:
        return metadata.version("gpu-breakfix")
    except metadata.PackageNotFoundError:
        return "0+unknown"


VERSION = _version()
"""The product version the server reports in its MCP ``initialize`` answer (serverInfo.version)."""

INSTRUCTIONS = (
    "Tools over the gpu-breakfix operator API. Reads, ticket creation and repair-plan creation are "
    "autonomous. Closing tickets needs a human. Executing a repair plan needs an approval token from "
    "a human approver (`breakfix approve PLAN_ID`) unless the playbook's canary list covers every node. "
    "Every call is audited with you as the initiator; operators can replay it with `breakfix audit replay`."
)


def _hints(name: str) -> ToolAnnotations:
    policy = policies()[name]
    return ToolAnnotations(
        read_only_hint=policy.read_only, destructive_hint=name == "execute_repair_plan", open_world_hint=False
    )


def build_server(
    target: ApiTarget, transport: httpx.BaseTransport | None = None, per_client: bool = False
) -> MCPServer:
    """An MCP server whose tools call the API at ``target`` (``transport`` only for in-process tests).
    ``per_client``: each request's own bearer token only, never ``target.token`` (MCP over HTTP)."""
    api = ApiBackend(target, transport, per_client)
    server = MCPServer("breakfix", version=VERSION, instructions=INSTRUCTIONS, log_level="WARNING")

    written: set[str] = set()

    def tool(name: str, what: str) -> Callable[[F], F]:
        written.add(name)
        return server.tool(name=name, description=describe(name, what), annotations=_hints(name))

    @tool(
        "query_sql",
        "Run one read-only SELECT over the audit store (events, evidence, decisions, actions, "
        "audit). Answers {columns, rows}.",
    )
    def query_sql(query: str, ctx: Context) -> dict[str, Any]:
        return dict(api.call("query_sql", ctx.headers, lambda c: c.sql(query)))

    @tool("get_metrics", "Prometheus metrics; `match` keeps only lines containing it (e.g. a metric name).")
    def get_metrics(ctx: Context, match: str = "") -> str:
        text = api.call("get_metrics", ctx.headers, lambda c: c.metrics())
        return "\n".join(line for line in text.splitlines() if match in line) if match else text

    @tool("list_nodes", "Nodes with pool, rack, SKU, GPUs, state, failure class and confidence.")
    def list_nodes(
        ctx: Context, pool: str | None = None, state: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        return api.call(
            "list_nodes", ctx.headers, lambda c: c.list_nodes(pool=pool, state=state, limit=limit)
        )

    @tool("get_node", "One node: state, evidence and recent decisions.")
    def get_node(node: str, ctx: Context) -> dict[str, Any]:
        return api.call("get_node", ctx.headers, lambda c: c.get_node(node))

    @tool("list_runbooks", "The playbook catalog: name, version, failure classes, approval, steps.")
    def list_runbooks(ctx: Context) -> list[dict[str, Any]]:
        return api.call("list_runbooks", ctx.headers, lambda c: c.list_runbooks())

    @tool(
        "read_ticket",
        "One ticket by id; else {tickets: [...]}: a node's, or the most recent fleet-wide when no node.",
    )
    def read_ticket(ctx: Context, ticket_id: str | None = None, node: str | None = None) -> dict[str, Any]:
        if ticket_id:
            return api.call("read_ticket", ctx.headers, lambda c: c.get_ticket(ticket_id))
        return {"tickets": api.call("read_ticket", ctx.headers, lambda c: c.list_tickets(node))}

    @tool(
        "create_ticket",
        "Open an incident ticket for a node. A node has at most one open ticket: when it already has "
        "one, your summary and details are added to it as a comment (answer: created=false, note).",
    )
    def create_ticket(node: str, summary: str, ctx: Context, details: str = "") -> dict[str, Any]:
        return api.call("create_ticket", ctx.headers, lambda c: c.create_ticket(node, summary, details))

    @tool("close_ticket", "Close an incident ticket.")
    def close_ticket(ticket_id: str, resolution: str, ctx: Context) -> dict[str, Any]:
        return api.call("close_ticket", ctx.headers, lambda c: c.close_ticket(ticket_id, resolution))

    @tool(
        "create_repair_plan",
        "Plan a repair in a pool for a failure class: affected nodes, playbook and "
        "version per node, risk, capacity per pool against headroom, approval needed. "
        "dry_run=false makes the plan executable.",
    )
    def create_repair_plan(
        pool: str,
        failure_class: str,
        ctx: Context,
        nodes: list[str] | None = None,
        rack: str | None = None,
        sku: str | None = None,
        state: str | None = None,
        action: str | None = None,
        dry_run: bool = True,
    ) -> dict[str, Any]:
        selector = {k: v for k, v in (("rack", rack), ("sku", sku), ("state", state)) if v}
        return api.call(
            "create_repair_plan",
            ctx.headers,
            lambda c: c.create_plan(
                pool, failure_class, nodes=nodes, selector=selector or None, action=action, dry_run=dry_run
            ),
        )

    @tool("get_repair_plan", "A repair plan by id.")
    def get_repair_plan(plan_id: str, ctx: Context) -> dict[str, Any]:
        return api.call("get_repair_plan", ctx.headers, lambda c: c.get_plan(plan_id))

    @tool("execute_repair_plan", "Execute a plan exactly as planned; answers the workflow id.")
    def execute_repair_plan(
        plan_id: str,
        ctx: Context,
        approval_token: str | None = None,
        concurrency: int = 1,
    ) -> dict[str, Any]:
        """Rollback on failure is the playbook's, run by the actuator stage: there is nothing to choose."""
        return api.call(
            "execute_repair_plan",
            ctx.headers,
            lambda c: c.execute_plan(plan_id, approval_token, concurrency=concurrency),
        )

    @tool("get_workflow", "A workflow: status, current step, steps, events, metrics, errors.")
    def get_workflow(workflow_id: str, ctx: Context) -> dict[str, Any]:
        return api.call("get_workflow", ctx.headers, lambda c: c.get_workflow(workflow_id))

    for op in OPERATIONS.values():
        if op.tool is not None and op.tool.name not in written:
            what = f"{op.tool.capability} ({op.method} {op.path})."
            _generic_tool(server, api, op.name, op.tool.name, what)
    return server


def _generic_tool(server: MCPServer, api: ApiBackend, operation: str, name: str, what: str) -> None:
    """An operation that declares a tool but has no hand-written one above: its path, query and
    body fields go in ``arguments`` (the API validates them and answers 422 naming a wrong one)."""

    def run(ctx: Context, arguments: dict[str, Any] | None = None) -> Any:
        return api.call(name, ctx.headers, lambda c: c.call(operation, arguments or {}))

    server.tool(name=name, description=describe(name, what), annotations=_hints(name))(run)
