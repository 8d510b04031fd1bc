"""Ad-hoc SQL for analysts, read-only: one SELECT (or WITH ... SELECT), wrapped so it cannot write.

The lexical check gives a clear 4xx for the obvious mistakes; the real barrier is ClickHouse's own
``readonly = 1`` on the wrapping query, which refuses any write or settings change whatever the text.
"""

from __future__ import annotations

import re

_START = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def readonly_select(query: str, limit: int) -> str:
    """The statement to run for ``query``; raises ValueError saying what to fix."""
    text = query.strip().rstrip(";").strip()
    if not text:
        raise ValueError("query is empty: send one SELECT statement")
    if ";" in text:
        raise ValueError("one statement only: remove the ';' between statements")
    if not _START.match(text):
        raise ValueError("only SELECT (or WITH ... SELECT) is allowed on this endpoint")
    if re.search(r"\b(settings|format|into\s+outfile)\b", text, re.IGNORECASE):
        raise ValueError("SETTINGS, FORMAT and INTO OUTFILE are not allowed; the API picks them")
    return f"SELECT * FROM ({text}) LIMIT {int(limit)} SETTINGS readonly = 1"
