"""Helpers every command shares: the console, JSON output and errors that say what to do next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console

from store.base import Store, StoreError, StoreUnavailable

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, hint: str = "", code: int = 2) -> NoReturn:
    """Exit with a message and, where one exists, the next step the user should take."""
    err_console.print(f"[bold red]error:[/] {message}")
    if hint:
        err_console.print(f"[yellow]hint:[/] {hint}")
    raise typer.Exit(code)


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@contextmanager
def store_errors(store: Store) -> Iterator[Store]:
    """Turn the store's failures into messages that say what to do, and close it either way."""
    try:
        yield store
    except StoreUnavailable as err:
        fail(f"the store is unreachable: {err}", "check --store / $BREAKFIX_STORE_DSN")
    except StoreError as err:
        fail(f"query failed: {err}", "run 'breakfix db migrate' first if the tables are missing")
    finally:
        store.close()
