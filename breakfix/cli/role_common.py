"""What every role command shares: ``--settings FILE``, ``--print-settings`` and one way to build
the role's settings model from its flags (breakfix/roles/)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from breakfix.cli.common import fail
from breakfix.roles.load import build, export_env, masked

S = TypeVar("S", bound=BaseSettings)

SETTINGS_OPT = typer.Option(
    None,
    "--settings",
    help="Settings file (dotenv lines BREAKFIX_<NAME>=value; default ./breakfix.env if present). "
    "Flags override the environment, which overrides this file.",
)
PRINT_OPT = typer.Option(
    False, "--print-settings", help="Print the effective settings (secrets masked) and exit."
)


def settle(model: type[S], settings_file: Path | None, print_settings: bool, **flags: Any) -> S:
    """The role's effective settings, exported to this process's environment; with
    ``--print-settings``, printed (secrets masked) and the command ends there."""
    try:
        settings = build(model, settings_file, **flags)
    except FileNotFoundError as err:
        fail(str(err), "give --settings an existing dotenv file, or leave it out")
    except ValidationError as err:
        problems = "; ".join(
            f"BREAKFIX_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in err.errors()
        )
        fail(f"invalid settings: {problems}", "fix the flag, variable or settings-file line named")
    if print_settings:
        typer.echo(f"# {model.__name__}: effective settings, secrets masked")
        for name, value in masked(settings).items():
            typer.echo(f"{name}={'' if value is None else value}")
        raise typer.Exit(0)
    export_env(settings)
    signal.signal(signal.SIGTERM, _stop)
    return settings


def _stop(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM is how systemd, Kubernetes and ``docker stop`` ask a process to stop. Until a
    component installs its own graceful handler (the stages, the sink, the agent do), and after one
    that re-raises the signal once it has shut down (uvicorn does), it ends the process with status 0
    through Python's normal unwinding, so stores and clients still close in their ``finally``."""
    raise SystemExit(0)
