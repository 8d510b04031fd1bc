"""``breakfix validate``: check recordings against the contract, count events and dead letters."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from breakfix.cli.common import console, fail, print_json
from schemas.deadletter import DeadLetter
from schemas.recording import RecordingWriter, Validator, read_recording


def validate(
    files: list[str] = typer.Argument(..., help="Recordings (.jsonl or .jsonl.gz); '-' reads stdin."),
    dead_letters: Path | None = typer.Option(None, "--dead-letters", help="Write rejected lines here."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Validate recordings line by line; exit 1 if any line was dead-lettered.

    Example: breakfix validate fleet.jsonl.gz --dead-letters bad.jsonl
    """
    validator = Validator()
    writer = RecordingWriter(dead_letters) if dead_letters else None
    try:
        for f in files:
            if f != "-" and not Path(f).is_file():
                fail(f"no such recording: {f}", "pass a .jsonl or .jsonl.gz file, or '-' for stdin")
            for item in read_recording(f, validator):
                if isinstance(item, DeadLetter) and writer:
                    writer.write(item)
    finally:
        if writer:
            writer.close()
    stats = validator.stats
    if as_json:
        print_json({"events": dict(stats.events), "dead_letters": dict(stats.dead_letters)})
    else:
        table = Table(title=f"{stats.total} lines")
        table.add_column("kind")
        table.add_column("name")
        table.add_column("count", justify="right")
        for name, n in sorted(stats.events.items()):
            table.add_row("event", name, str(n))
        for name, n in sorted(stats.dead_letters.items()):
            table.add_row("[red]dead letter[/]", name, str(n))
        console.print(table)
    if stats.dead_letters:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
