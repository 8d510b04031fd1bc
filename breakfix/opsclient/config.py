"""Where the operator API is and who is calling: options first, then the environment.

One resolution rule for the CLI and the MCP server, so ``--server``/``--token`` and
``BREAKFIX_API_URL``/``BREAKFIX_API_TOKEN`` mean the same thing everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "BREAKFIX_API_URL"
TOKEN_ENV = "BREAKFIX_API_TOKEN"
TOKEN_FILE_ENV = "BREAKFIX_API_TOKEN_FILE"


class TokenFileError(ValueError):
    """A token file named in the configuration cannot be used; the message says why."""


def read_token_file(path: str | Path) -> str:
    """The token in ``path`` (its first non-empty line): how a process started without the caller's
    environment (an MCP client spawning ``breakfix mcp``) gets its identity without it on the
    command line, where ``ps`` would show it."""
    p = Path(path).expanduser()
    try:
        lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    except OSError as err:
        raise TokenFileError(f"cannot read token file {p}: {err.strerror}") from err
    if not lines:
        raise TokenFileError(f"token file {p} is empty")
    return lines[0]


@dataclass(frozen=True)
class ApiTarget:
    """The API base URL and the bearer token sent with every call (empty: the API answers 401)."""

    url: str
    token: str

    @classmethod
    def resolve(
        cls, server: str | None = None, token: str | None = None, token_file: str | Path | None = None
    ) -> ApiTarget:
        """Explicit values win over the environment; then a token file (``token_file`` or
        ``$BREAKFIX_API_TOKEN_FILE``); the URL falls back to the local default. (The CLI's entry
        point has already filled unset variables from ``breakfix up``'s context file.)

        >>> ApiTarget.resolve("http://api:9000/", "t").url
        'http://api:9000'
        """
        url = server or os.environ.get(URL_ENV) or DEFAULT_URL
        found = token or os.environ.get(TOKEN_ENV, "")
        path = token_file or os.environ.get(TOKEN_FILE_ENV)
        if token_file or (not found and path):
            found = read_token_file(path)  # type: ignore[arg-type]
        return cls(url=url.rstrip("/"), token=found)
