"""``breakfix policy check``: validate a policy file and explain every error by its key."""

from __future__ import annotations

from pathlib import Path

import typer

from breakfix.cli.common import console, fail
from policy.model import PolicyError, load_policy

policy_app = typer.Typer(help="Policy files: thresholds, modes, guardrails.", no_args_is_help=True)


@policy_app.command("check")
def check(file: Path = typer.Argument(..., help="Policy YAML to validate.")) -> None:
    """Validate a policy file; exit 2 with the offending keys if it is invalid.

    Example: breakfix policy check policy/default_policy.yaml
    """
    if not file.is_file():
        fail(f"no such policy file: {file}", "start from policy/default_policy.yaml")
    try:
        p = load_policy(file)
    except PolicyError as err:
        fail(str(err), "fix the keys named above; see policy/default_policy.yaml for every field")
    auto = [c for c, m in p.modes.classes.items() if m.value == "auto"]
    console.print(f"[green]ok[/] {file}: version {p.version}; default mode {p.modes.default.value}; "
                  f"auto classes: {', '.join(auto) or 'none'}")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
