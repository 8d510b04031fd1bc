"""The operator operations, each named once: its route, the roles that may call it, the command line
the audit records for it, and, where agents may use it, its MCP tool and autonomy.

Where this sits: the API's routes carry an operation name (``name="killswitch.set"``) and the auth
layer looks it up here; everything else about an operation is derived from this table: the role
table (``breakfix.api.roles``), the ``breakfix ...`` line in every audit record
(``breakfix.api.cli_line``), the ops client's :meth:`~breakfix.opsclient.OpsClient.call`, the
``breakfix call OPERATION`` verb, and the MCP autonomy table (``breakfix.mcptools.autonomy``).
Adding an operation is its :class:`Operation` entry here and its route handler in
``breakfix/api/routes_*.py`` (docs/extend/operation.md); a test fails when the two disagree.

>>> OPERATIONS["killswitch.set"].path, sorted(OPERATIONS["killswitch.set"].roles)
('/killswitch', ['operator'])
>>> OPERATIONS["nodes.get"].url({"node": "gpu-7", "limit": 3})
'/nodes/gpu-7'
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Args = Mapping[str, Any]
Method = Literal["GET", "POST", "DELETE"]
Autonomy = Literal["autonomous read", "autonomous", "allowed", "needs a human", "HITL or canary-only"]

# The roles of ``breakfix.api.roles``; ``admin`` holds every operation and is never listed.
READERS = frozenset({"viewer", "operator", "approver", "agent"})
OPERATORS = frozenset({"operator"})
# Approvers sign plans and decisions; they do not run them (the requester does, with the token).
APPROVERS = frozenset({"approver"})
# Agents read, file tickets and create/execute plans (execution still needs a human's approval token
# or a canary list); closing tickets and the levers need a human (the autonomy of each tool below).
AGENT = frozenset({"agent"})
# The NICo repair tenant releases machines it repaired and reads their records, nothing else.
REPAIR_TENANT = frozenset({"repair-tenant"})


@dataclass(frozen=True)
class Tool:
    """An operation agents reach over MCP: the tool's name, what it does, how far an agent may go
    alone, and what a person does when the API refuses the agent."""

    name: str
    capability: str
    autonomy: Autonomy
    human_step: str = ""


@dataclass(frozen=True)
class Operation:
    """One API operation. ``roles``: who may call it besides ``admin``. ``cli``: the dedicated verb's
    command line for an audit record (None: the generic ``breakfix call NAME --arg key=value ...``).
    ``tool``: set when agents may call it over MCP."""

    name: str
    method: Method
    path: str
    roles: frozenset[str]
    cli: Callable[[Args], list[str]] | None = None
    tool: Tool | None = None

    @property
    def read_only(self) -> bool:
        return self.method == "GET" or self.name == "sql.query"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.path) if f)

    def url(self, args: Args) -> str:
        """The path with its ``{params}`` filled from ``args`` (the rest is query or body)."""
        return self.path.format(**{k: args[k] for k in self.path_params})

    def line(self, args: Args) -> list[str]:
        """The command line after ``breakfix`` that makes this call with ``args``."""
        if self.cli is not None:
            return self.cli(args)
        return ["call", self.name, *(f"--arg={k}={v}" for k, v in sorted(args.items()) if v is not None)]


def opt(flag: str, value: Any) -> list[str]:
    """``[flag, value]`` for a set value (each item of a list; a true bool alone), else nothing.

    >>> opt("--pool", "train"), opt("--node", ["a", "b"]), opt("--dry-run", True), opt("--x", None)
    (['--pool', 'train'], ['--node', 'a', '--node', 'b'], ['--dry-run'], [])
    """
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, bool):
        return [flag] if value else []
    if isinstance(value, list):
        return [part for v in value for part in (flag, str(v))]
    return [flag, str(value)]


def _plan_create(a: Args) -> list[str]:
    sel = a.get("selector") or {}
    return [
        "plan", "create", "--pool", str(a.get("pool", "")), "--class", str(a.get("failure_class", "")),
        *opt("--node", a.get("nodes")), *opt("--rack", sel.get("rack")), *opt("--sku", sel.get("sku")),
        *opt("--state", sel.get("state")), *opt("--action", a.get("action")),
        "--dry-run" if a.get("dry_run", True) else "--no-dry-run",
    ]  # fmt: skip


def _read(name: str, capability: str) -> Tool:
    return Tool(name, capability, "autonomous read")


_TABLE = (
    # nodes and decisions
    Operation("nodes.list", "GET", "/nodes", READERS,
              lambda a: ["nodes", *opt("--pool", a.get("pool")), *opt("--state", a.get("state"))],
              _read("list_nodes", "node state by pool/state")),
    Operation("nodes.get", "GET", "/nodes/{node}", READERS,
              lambda a: ["node", "show", str(a.get("node", ""))],
              _read("get_node", "one node: state, evidence, decisions")),
    Operation("decisions.list", "GET", "/decisions", READERS,
              lambda a: ["decisions", *opt("--node", a.get("node")), *opt("--since", a.get("since"))]),
    # repair plans and workflows
    Operation("plans.create", "POST", "/repair-plans", OPERATORS | AGENT, _plan_create,
              Tool("create_repair_plan", "plan a repair (dry run or executable)", "allowed")),
    Operation("plans.get", "GET", "/repair-plans/{plan_id}", READERS,
              lambda a: ["plan", "show", str(a.get("plan_id", ""))],
              _read("get_repair_plan", "a plan: nodes, playbooks, risk, capacity")),
    Operation("plans.list", "GET", "/repair-plans", READERS,
              lambda a: ["plan", "list", *opt("--limit", a.get("limit"))]),
    Operation("plans.approve", "POST", "/repair-plans/{plan_id}/approve", APPROVERS,
              lambda a: ["approve", "plan", str(a.get("plan_id", "")), *opt("--comment", a.get("comment"))]),
    Operation("plans.execute", "POST", "/repair-plans/{plan_id}/execute", OPERATORS | AGENT,
              lambda a: ["plan", "execute", str(a.get("plan_id", "")),
                         *opt("--token", "<approval-token>" if a.get("approval_token") else None),
                         *opt("--concurrency", a.get("concurrency"))],
              Tool("execute_repair_plan", "run a plan as planned", "HITL or canary-only",
                   "a human approver runs `breakfix approve PLAN_ID` and hands you the token "
                   "(or the playbook's approval is a canary list that includes every node)")),
    Operation("workflows.get", "GET", "/workflows/{workflow_id}", READERS,
              lambda a: ["workflow", "show", str(a.get("workflow_id", ""))],
              _read("get_workflow", "a running plan: step, events, errors")),
    Operation("workflows.list", "GET", "/workflows", READERS,
              lambda a: ["workflow", "list", *opt("--limit", a.get("limit"))]),
    # operator levers
    Operation("levers.get", "GET", "/levers", READERS, lambda a: ["levers", *opt("--kind", a.get("kind"))]),
    Operation("killswitch.get", "GET", "/killswitch", READERS, lambda a: ["killswitch", "show"]),
    Operation("killswitch.set", "POST", "/killswitch", OPERATORS,
              lambda a: ["killswitch", "on" if a.get("on") else "off", *opt("--pool", a.get("pool")),
                         *opt("--reason", a.get("reason"))]),
    Operation("modes.set", "POST", "/modes", OPERATORS,
              lambda a: ["mode", "set", str(a.get("failure_class", "")), str(a.get("mode", "")),
                         *opt("--reason", a.get("reason"))]),
    Operation("approvals.create", "POST", "/approvals", APPROVERS,
              lambda a: ["approve", "decision", str(a.get("decision_id", "")), *opt("--node", a.get("node")),
                         *opt("--class", a.get("failure_class")), *opt("--action", a.get("action")),
                         *opt("--reason", a.get("reason"))]),
    Operation("breaker.reset", "POST", "/breaker/reset", OPERATORS,
              lambda a: ["breaker", "reset",
                         "--discard-backlog" if a.get("resolution") == "discard_backlog" else "--resume",
                         *opt("--reason", a.get("reason"))]),
    # NICo-style machines and health overrides
    Operation("instances.release", "POST", "/api/v1/instances/release", OPERATORS | REPAIR_TENANT,
              lambda a: ["machine", "release", str(a.get("instance_id") or a.get("id") or ""),
                         *opt("--category", (a.get("issue") or {}).get("category")),
                         *opt("--summary", (a.get("issue") or {}).get("summary")),
                         *opt("--repair-status", a.get("repair_status"))]),
    Operation("machines.get", "GET", "/api/v1/machines/{machine_id}", READERS | REPAIR_TENANT,
              lambda a: ["machine", "show", str(a.get("machine_id", ""))]),
    Operation("overrides.get", "GET", "/api/v1/machines/{machine_id}/health-overrides",
              READERS | REPAIR_TENANT,
              lambda a: ["health-override", "show", str(a.get("machine_id", ""))]),
    Operation("overrides.add", "POST", "/api/v1/machines/{machine_id}/health-overrides", OPERATORS,
              lambda a: ["health-override", "add", str(a.get("machine_id", "")),
                         *opt("--template", a.get("template")), *opt("--message", a.get("message"))]),
    Operation("overrides.remove", "DELETE", "/api/v1/machines/{machine_id}/health-overrides/{name}",
              OPERATORS,
              lambda a: ["health-override", "remove", str(a.get("machine_id", "")), str(a.get("name", ""))]),
    # audit, runbooks, tickets, SQL
    Operation("audit.list", "GET", "/audit", READERS,
              lambda a: ["audit", *opt("--actor", a.get("actor")), *opt("--since", a.get("since"))]),
    Operation("runbooks.list", "GET", "/runbooks", READERS, lambda a: ["runbooks"],
              _read("list_runbooks", "playbook catalog metadata")),
    Operation("tickets.list", "GET", "/tickets", READERS,
              lambda a: ["ticket", "list", *opt("--node", a.get("node"))],
              _read("read_ticket", "tickets by id or node")),
    Operation("tickets.get", "GET", "/tickets/{ticket_id}", READERS,
              lambda a: ["ticket", "show", str(a.get("ticket_id", ""))]),
    Operation("tickets.create", "POST", "/tickets", OPERATORS | AGENT,
              lambda a: ["ticket", "create", str(a.get("node", "")), *opt("--summary", a.get("summary"))],
              Tool("create_ticket", "open an incident ticket", "autonomous")),
    Operation("tickets.close", "POST", "/tickets/{ticket_id}/close", OPERATORS | AGENT,
              lambda a: ["ticket", "close", str(a.get("ticket_id", "")),
                         *opt("--resolution", a.get("resolution"))],
              Tool("close_ticket", "close an incident ticket", "needs a human",
                   "a human closes it: `breakfix ticket close TICKET_ID --resolution ...`")),
    Operation("sql.query", "POST", "/sql", READERS, lambda a: ["sql", "--api", str(a.get("query", ""))],
              _read("query_sql", "read-only SQL over the audit store")),
)  # fmt: skip

OPERATIONS: dict[str, Operation] = {op.name: op for op in _TABLE}
"""Every operation the API serves, by name."""
