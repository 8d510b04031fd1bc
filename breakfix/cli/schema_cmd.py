"""``breakfix schema export``: write the JSON Schema of every topic from the pydantic models."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import console
from schemas.export import JSON_DIR, export

schema_app = typer.Typer(help="Event and decision contracts as JSON Schema.", no_args_is_help=True)


@schema_app.command("export")
def export_cmd(
    directory: Path = typer.Argument(
        JSON_DIR, help="Output directory (default: the package's schemas/json)."
    ),
) -> None:
    """Export one JSON Schema file per event type and per topic.

    Example: breakfix schema export ./contracts
    """
    for p in export(directory):
        console.print(str(p))


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
