"""The ``breakfix ...`` command line equivalent to an API call, stored in its audit record so an
operator can replay exactly what an agent (or another operator) did."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

Args = Mapping[str, Any]


def _opt(flag: str, value: Any) -> list[str]:
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
        "plan",
        "create",
        "--pool",
        str(a.get("pool", "")),
        "--class",
        str(a.get("failure_class", "")),
        *_opt("--node", a.get("nodes")),
        *_opt("--rack", sel.get("rack")),
        *_opt("--sku", sel.get("sku")),
        *_opt("--state", sel.get("state")),
        *_opt("--action", a.get("action")),
        "--dry-run" if a.get("dry_run", True) else "--no-dry-run",
    ]


_BUILDERS: dict[str, Callable[[Args], list[str]]] = {
    "nodes.list": lambda a: ["nodes", *_opt("--pool", a.get("pool")), *_opt("--state", a.get("state"))],
    "nodes.get": lambda a: ["node", "show", str(a.get("node", ""))],
    "decisions.list": lambda a: [
        "decisions",
        *_opt("--node", a.get("node")),
        *_opt("--since", a.get("since")),
    ],
    "plans.create": _plan_create,
    "plans.get": lambda a: ["plan", "show", str(a.get("plan_id", ""))],
    "plans.approve": lambda a: [
        "approve",
        "plan",
        str(a.get("plan_id", "")),
        *_opt("--comment", a.get("comment")),
    ],
    "plans.execute": lambda a: [
        "plan",
        "execute",
        str(a.get("plan_id", "")),
        *_opt("--token", "<approval-token>" if a.get("approval_token") else None),
        *_opt("--concurrency", a.get("concurrency")),
        *_opt("--rollback", a.get("rollback_policy")),
    ],
    "workflows.get": lambda a: ["workflow", "show", str(a.get("workflow_id", ""))],
    "workflows.list": lambda a: ["workflow", "list", *_opt("--limit", a.get("limit"))],
    "plans.list": lambda a: ["plan", "list", *_opt("--limit", a.get("limit"))],
    "levers.get": lambda a: ["levers", *_opt("--kind", a.get("kind"))],
    "killswitch.get": lambda a: ["killswitch", "show"],
    "killswitch.set": lambda a: [
        "killswitch",
        "on" if a.get("on") else "off",
        *_opt("--pool", a.get("pool")),
        *_opt("--reason", a.get("reason")),
    ],
    "modes.set": lambda a: [
        "mode",
        "set",
        str(a.get("failure_class", "")),
        str(a.get("mode", "")),
        *_opt("--reason", a.get("reason")),
    ],
    "approvals.create": lambda a: [
        "approve",
        "decision",
        str(a.get("decision_id", "")),
        *_opt("--node", a.get("node")),
        *_opt("--class", a.get("failure_class")),
        *_opt("--action", a.get("action")),
        *_opt("--reason", a.get("reason")),
    ],
    "breaker.reset": lambda a: [
        "breaker",
        "reset",
        "--discard-backlog" if a.get("resolution") == "discard_backlog" else "--resume",
        *_opt("--reason", a.get("reason")),
    ],
    "instances.release": lambda a: [
        "machine",
        "release",
        str(a.get("instance_id") or a.get("id") or ""),
        *_opt("--category", (a.get("issue") or {}).get("category")),
        *_opt("--summary", (a.get("issue") or {}).get("summary")),
        *_opt("--repair-status", a.get("repair_status")),
    ],
    "machines.get": lambda a: ["machine", "show", str(a.get("machine_id", ""))],
    "overrides.get": lambda a: ["health-override", "show", str(a.get("machine_id", ""))],
    "overrides.add": lambda a: [
        "health-override",
        "add",
        str(a.get("machine_id", "")),
        *_opt("--template", a.get("template")),
        *_opt("--message", a.get("message")),
    ],
    "overrides.remove": lambda a: [
        "health-override",
        "remove",
        str(a.get("machine_id", "")),
        str(a.get("name", "")),
    ],
    "audit.list": lambda a: ["audit", *_opt("--actor", a.get("actor")), *_opt("--since", a.get("since"))],
    "runbooks.list": lambda a: ["runbooks"],
    "tickets.list": lambda a: ["ticket", "list", *_opt("--node", a.get("node"))],
    "tickets.get": lambda a: ["ticket", "show", str(a.get("ticket_id", ""))],
    "tickets.create": lambda a: [
        "ticket",
        "create",
        str(a.get("node", "")),
        *_opt("--summary", a.get("summary")),
    ],
    "tickets.close": lambda a: [
        "ticket",
        "close",
        str(a.get("ticket_id", "")),
        *_opt("--resolution", a.get("resolution")),
    ],
    "sql.query": lambda a: ["sql", "--api", str(a.get("query", ""))],
}


API_COMMANDS = frozenset(build({})[0] for build in _BUILDERS.values())
"""The commands an audit line can name: each one a call of the API (``sql`` only with ``--api``)."""


def through_api(args: list[str]) -> bool:
    """Whether ``breakfix ARGS`` only talks to the API (what ``audit replay`` may run): one of the
    operator verbs, never a raw-store option, and ``sql`` only in its ``--api`` form."""
    if not args or args[0] not in API_COMMANDS or "--store" in args:
        return False
    return args[0] != "sql" or "--api" in args


def cli_line(operation: str, args: Args) -> str:
    """``breakfix ...`` for ``operation`` called with ``args`` (path, query and body merged).

    >>> cli_line("killswitch.set", {"on": True, "pool": "train", "reason": "bad driver"})
    "breakfix killswitch on --pool train --reason 'bad driver'"
    """
    build = _BUILDERS.get(operation)
    if build is None:
        return ""
    try:
        parts = build(args)
    except (AttributeError, TypeError):  # a malformed body (refused with 422) still gets audited
        parts = [operation]
    return shlex.join(["breakfix", *parts])
