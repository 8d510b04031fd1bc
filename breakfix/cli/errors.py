"""Unexpected errors as one or two lines: what happened, and what to do next.

Commands report the failures they expect themselves; this is the last net for the rest (a broker
that is down, an API that does not answer, a file that cannot be read), so a user never reads a
56-line traceback to learn that nothing listens on the broker's port. ``--debug`` shows it anyway.
"""

from __future__ import annotations

import errno
import re

from store.base import StoreError, StoreUnavailable
from store.owner import StoreInUse

DEBUG_HINT = "rerun with --debug for the traceback"


_NOISE = re.compile(r",? ?<AddressFamily\.\w+: \d+>")


def _first_line(err: BaseException) -> str:
    name = type(err).__name__
    lines = str(err).strip().splitlines()
    text = _NOISE.sub("", lines[0])[:300] if lines else ""
    text = text.removeprefix(f"{name}: ")
    return f"{name}: {text}" if text else name


def explain(err: BaseException) -> tuple[str, str]:
    """(message, hint) for an exception no command handled."""
    name = type(err).__name__
    module = type(err).__module__
    if module.startswith(("aiokafka", "kafka")) or name in ("KafkaConnectionError", "KafkaTimeoutError"):
        return (
            f"the Kafka broker is unreachable ({_first_line(err)})",
            "start the local stack with `breakfix up`, or pass --broker HOST:PORT (or set BREAKFIX_BROKER)",
        )
    if module.startswith(("httpx", "httpcore")):
        return (
            f"the API is unreachable ({_first_line(err)})",
            "start the local stack with `breakfix up`, or pass --server URL (or set BREAKFIX_API_URL)",
        )
    if isinstance(err, StoreInUse):
        return str(err), err.hint
    if "Cannot lock file" in str(err) or "Another server instance in same directory" in str(err):
        return (
            "the embedded store's directory is in use by another process (chdb admits one per path)",
            "point --store at the process that owns it (`breakfix up` serves its store over HTTP: "
            "see `breakfix status`), or use another chdb:///path",
        )
    if isinstance(err, StoreUnavailable):
        return f"the store is unreachable: {_first_line(err)}", "check --store or BREAKFIX_STORE_DSN"
    if isinstance(err, StoreError):
        return f"the store refused: {_first_line(err)}", "run `breakfix db migrate` if tables are missing"
    if isinstance(err, ConnectionError | TimeoutError) or (
        isinstance(err, OSError) and err.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH)
    ):
        return f"connection failed: {_first_line(err)}", "is the service running? `breakfix status` shows it"
    if isinstance(err, FileNotFoundError | PermissionError | IsADirectoryError):
        return f"{_first_line(err)}", "check the path and its permissions"
    return f"unexpected error: {_first_line(err)}", DEBUG_HINT
