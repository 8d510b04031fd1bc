"""What every operator verb shares: the API target options, one error path and the two outputs.

Humans get rich tables; scripts pass ``--json`` and get the API's JSON unchanged. An API refusal is
printed as the API's own ``detail`` plus the next step, never as a traceback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import typer
from rich.table import Table

from breakfix.cli.common import console, fail, print_json
from breakfix.opsclient import ApiError, ApiTarget, OpsClient
from breakfix.opsclient.client import Page
from breakfix.opsclient.config import TOKEN_ENV, URL_ENV

T = TypeVar("T")
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

SERVER_OPT = typer.Option(
    None, "--server", help=f"API base URL (default ${URL_ENV} or http://127.0.0.1:8080)."
)
TOKEN_OPT = typer.Option(None, "--token", help=f"Bearer token (default ${TOKEN_ENV}).")
JSON_OPT = typer.Option(False, "--json", help="Print the API's JSON answer (for scripts).")


def report(exc: ApiError) -> NoReturn:
    """Exit 1 with the API's message and the next step."""
    prefix = f"HTTP {exc.status}: " if exc.status is not None else ""
    fail(f"{prefix}{exc.detail}", exc.hint, code=1)


@contextmanager
def api(server: str | None, token: str | None) -> Iterator[OpsClient]:
    """A client for one verb; an ApiError anywhere inside exits 1 with the message and the hint."""
    client = OpsClient(ApiTarget.resolve(server, token), surface="cli")
    try:
        yield client
    except ApiError as exc:
        report(exc)
    finally:
        client.close()


def call(server: str | None, token: str | None, fn: Callable[[OpsClient], T]) -> T:
    """Run one client call (the common case of a verb that makes one request)."""
    client = OpsClient(ApiTarget.resolve(server, token), surface="cli")
    try:
        return fn(client)
    except ApiError as exc:
        report(exc)
    finally:
        client.close()


def short_time(value: str, now: datetime | None = None) -> str:
    """An RFC 3339 time as a table shows it: ``HH:MM`` today (UTC), ``MM-DD HH:MM`` before (the
    JSON output keeps the full time).

    >>> short_time("2026-01-05T07:08:09.5Z", datetime(2026, 1, 5, 9, tzinfo=UTC))
    '07:08'
    >>> short_time("2026-01-04T07:08:09+00:00", datetime(2026, 1, 5, 9, tzinfo=UTC))
    '01-04 07:08'
    """
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    today = (now or datetime.now(UTC)).date()
    return t.strftime("%H:%M") if t.date() == today else t.strftime("%m-%d %H:%M")


def cell(value: Any) -> str:
    """One table cell: lists joined, floats shortened, times compact, missing values blank (never
    ``nan``)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    if isinstance(value, str) and _RFC3339.match(value):
        return short_time(value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


HEADERS = {"failure_class": "class", "confidence": "conf", "playbook_version": "version", "gpus": "gpu"}
"""Shorter column headers, so a fleet table fits 80 columns."""


def table(
    title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str], more: bool = False
) -> Table:
    """A compact table of ``columns`` from dict rows (keys the API did not send stay blank): no
    borders, one space between columns, so the usual fleet listing fits an 80-column terminal. A
    value too wide folds onto a second line instead of being cut. ``more``: the API had more rows
    than the limit, said under the table."""
    out = Table(
        title=title,
        title_justify="left",
        box=None,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        header_style="bold",
        caption="more rows exist: raise --limit or narrow the filter" if more else None,
        caption_justify="left",
    )
    for i, col in enumerate(columns):
        # ids stay whole and greppable however narrow the terminal
        out.add_column(HEADERS.get(col, col), no_wrap=i == 0, overflow="fold")
    for row in rows:
        out.add_row(*(cell(row.get(col)) for col in columns))
    return out


def fields(title: str, obj: dict[str, Any], skip: Sequence[str] = ()) -> Table:
    """A two-column ``key  value`` view of one object, scontrol-show style."""
    out = Table(title=title, title_justify="left", show_header=False, box=None)
    out.add_column(style="bold")
    out.add_column()
    for key, value in obj.items():
        if key not in skip:
            out.add_row(key, cell(value))
    return out


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON for scripts or through ``render`` for people."""
    if as_json:
        print_json(data)
    else:
        render(data)


def emit_page(
    page: Page,
    as_json: bool,
    title: str,
    columns: Sequence[str],
    row: Callable[[dict[str, Any]], dict[str, Any]] = lambda r: r,
) -> None:
    """One page of a listing (plans, workflows, decisions, audit): the rows as JSON for scripts, or
    a table titled ``title (count)`` saying under it when the API had more than the limit."""
    def render(rows: list[dict[str, Any]]) -> None:
        console.print(table(f"{title} ({len(rows)})", [row(r) for r in rows], columns, page.more))

    emit(page.rows, as_json, render)


def done(message: str) -> None:
    console.print(f"[green]✓[/] {message}")
