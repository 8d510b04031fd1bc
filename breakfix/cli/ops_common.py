"""What every operator verb shares: the API target options, one error path and the two outputs.

Humans get rich tables; scripts pass ``--json`` and get the API's JSON unchanged. An API refusal is
printed as the API's own ``detail`` plus the next step, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import typer
from rich.table import Table

from breakfix.cli.common import console, fail, print_json
from breakfix.opsclient import ApiError, ApiTarget, OpsClient
from breakfix.opsclient.config import TOKEN_ENV, URL_ENV

T = TypeVar("T")

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


def cell(value: Any) -> str:
    """One table cell: lists joined, floats shortened, missing values blank."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Table:
    """A rich table of ``columns`` from dict rows (keys the API did not send stay blank)."""
    out = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        out.add_column(col, no_wrap=i == 0)  # ids stay whole and greppable however narrow the terminal
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


def done(message: str) -> None:
    console.print(f"[green]✓[/] {message}")
