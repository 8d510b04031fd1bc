"""The context file: where the local stack is and who the commands act as, like kubectl's kubeconfig.

``breakfix up`` writes it (``~/.breakfix/context.yaml``, or ``$BREAKFIX_CONTEXT``) with the broker,
the API URL, the store DSN and one API token per role; every other command reads it through
:func:`apply_context`, which fills the ``BREAKFIX_*`` environment variables the commands already
read, *only where unset*. So the order is always: command-line option, then environment, then the
context file, then the built-in default. ``BREAKFIX_AS=<role>`` picks the identity (default
``operator``): ``BREAKFIX_AS=approver breakfix approve PLAN`` is the second person.

The file holds tokens: it is written with mode 0600, and ``breakfix down`` removes it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

CONTEXT_ENV = "BREAKFIX_CONTEXT"
AS_ENV = "BREAKFIX_AS"
DEFAULT_ROLE = "operator"


def context_path() -> Path:
    return Path(os.environ.get(CONTEXT_ENV) or Path.home() / ".breakfix" / "context.yaml")


@dataclass(frozen=True)
class StackContext:
    broker: str
    api_url: str
    store: str
    """The store's DSN for `breakfix sql`/`report`: the read-only user of the stack's store server."""
    tokens: dict[str, str] = field(default_factory=dict)
    """role -> bearer token of the local identity holding that role."""
    pid: int = 0
    """The `breakfix up` process that owns the stack (``breakfix down`` stops it)."""
    dir: str = ""
    """The stack's directory: logs, store, state."""

    def token(self, role: str | None = None, default: str = DEFAULT_ROLE) -> str:
        return self.tokens.get(role or os.environ.get(AS_ENV) or default, "")

    def save(self, path: Path | None = None) -> Path:
        path = path or context_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(asdict(self), fh, sort_keys=False)
        tmp.replace(path)
        return path


def load_context(path: Path | None = None) -> StackContext | None:
    """The context file's content; None when there is none or it cannot be read as one."""
    path = path or context_path()
    try:
        doc = yaml.safe_load(path.read_text())
        return StackContext(**doc) if isinstance(doc, dict) else None
    except (OSError, yaml.YAMLError, TypeError):
        return None


def apply_context(env: dict[str, str] | None = None, role: str = DEFAULT_ROLE) -> StackContext | None:
    """Fill unset ``BREAKFIX_BROKER``/``BREAKFIX_API_URL``/``BREAKFIX_API_TOKEN``/``BREAKFIX_STORE_DSN``
    from the context file (in ``env``, default ``os.environ``); the token is ``role``'s unless
    ``BREAKFIX_AS`` names another (`breakfix mcp` acts as the agent, every other command as the
    operator)."""
    target = os.environ if env is None else env
    ctx = load_context()
    if ctx is None:
        return None
    for name, value in (
        ("BREAKFIX_BROKER", ctx.broker),
        ("BREAKFIX_API_URL", ctx.api_url),
        ("BREAKFIX_API_TOKEN", ctx.token(default=role)),
        ("BREAKFIX_STORE_DSN", ctx.store),
    ):
        if value and not target.get(name):
            target[name] = value
    return ctx
