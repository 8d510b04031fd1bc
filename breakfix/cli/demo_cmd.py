"""``breakfix demo``: the README's first command."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.validate_cmd import validate

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.jsonl"


def demo() -> None:
    """Run the main job on the embedded defaults.

    Example: breakfix demo
    """
    typer.echo(f"validating the shipped sample recording {SAMPLE}")
    validate([str(SAMPLE)], dead_letters=None, as_json=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
