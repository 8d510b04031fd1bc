"""Where the operator API is and who is calling: options first, then the environment.

One resolution rule for the CLI and the MCP server, so ``--server``/``--token`` and
``BREAKFIX_API_URL``/``BREAKFIX_API_TOKEN`` mean the same thing everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "BREAKFIX_API_URL"
TOKEN_ENV = "BREAKFIX_API_TOKEN"


@dataclass(frozen=True)
class ApiTarget:
    """The API base URL and the bearer token sent with every call (empty: the API answers 401)."""

    url: str
    token: str

    @classmethod
    def resolve(cls, server: str | None = None, token: str | None = None) -> ApiTarget:
        """Explicit values win over the environment; the URL falls back to the local default.

        >>> ApiTarget.resolve("http://api:9000/", "t").url
        'http://api:9000'
        """
        url = server or os.environ.get(URL_ENV) or DEFAULT_URL
        return cls(url=url.rstrip("/"), token=token or os.environ.get(TOKEN_ENV, ""))
