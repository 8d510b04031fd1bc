"""The ``breakfix ...`` command line equivalent to an API call, stored in its audit record so an
operator can replay exactly what an agent (or another operator) did. Each operation's line is
declared with the operation (``breakfix.api.operations``)."""

from __future__ import annotations

import shlex

from breakfix.api.operations import OPERATIONS, Args

API_COMMANDS = frozenset(op.line({})[0] for op in OPERATIONS.values()) | {"call"}
"""The commands an audit line can name: each one a call of the API (``sql`` only with ``--api``;
``call`` is the generic verb of operations without a dedicated one)."""


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
    op = OPERATIONS.get(operation)
    if op is None:
        return ""
    try:
        parts = op.line(args)
    except (AttributeError, TypeError):  # a malformed body (refused with 422) still gets audited
        parts = [operation]
    return shlex.join(["breakfix", *parts])
