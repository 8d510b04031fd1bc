"""Paging of list answers: a list route asks the store for one row more than ``limit`` and says
whether there was one in the ``X-Breakfix-More`` header, so a client can print "more rows" instead
of silently stopping at the limit (the body stays the plain list scripts already read)."""

from __future__ import annotations

from fastapi import Response

MORE_HEADER = "X-Breakfix-More"


def more(response: Response, truncated: bool) -> None:
    response.headers[MORE_HEADER] = "true" if truncated else "false"
