"""Running external commands (scontrol, sinfo, nvidia-smi, dcgmi) behind one small, injectable seam.

Actuators never call ``subprocess`` directly: they take a :class:`CommandRunner`, so unit tests pass a
scripted runner and integration tests the real one against real daemons. Every call has a timeout,
and a command that hangs or cannot start becomes a :class:`TemporaryError` the engine may retry.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from actuators.base import PermanentError, TemporaryError


@dataclass(frozen=True)
class CommandOutput:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """One line for logs and action results: the command, its status and its stderr."""
        err = self.stderr.strip().splitlines()
        return f"`{' '.join(self.argv)}` exited {self.returncode}" + (f": {err[-1]}" if err else "")


class CommandRunner(Protocol):
    def run(self, argv: Sequence[str], timeout_s: float) -> CommandOutput:
        """Run ``argv`` and return its output. Raise TemporaryError when it hangs, PermanentError when
        the program does not exist."""
        ...


PRODUCT_PREFIX = "BREAKFIX_"
"""The product's own settings: tokens, the signing key, store DSNs and the Kafka password among them."""


def child_environment(parent: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a site command runs in: the parent's without the product's settings, plus ``extra``.

    scontrol, dcgmi, nvidia-smi and a site's validation workload need none of the product's secrets, and
    a child that logs or leaks its environment must not carry them.

    >>> child_environment({"PATH": "/bin", "BREAKFIX_API_TOKENS": "s3cret"}, {"SLURM_CONF": "/etc/s.conf"})
    {'PATH': '/bin', 'SLURM_CONF': '/etc/s.conf'}
    """
    kept = {k: v for k, v in parent.items() if not k.upper().startswith(PRODUCT_PREFIX)}
    return {**kept, **(extra or {})}


class SubprocessRunner:
    """The real runner. ``env`` adds to the inherited environment (e.g. ``SLURM_CONF``), which never
    passes the product's own ``BREAKFIX_*`` settings on (:func:`child_environment`)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = child_environment(os.environ, env)

    def run(self, argv: Sequence[str], timeout_s: float) -> CommandOutput:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=max(timeout_s, 0.1), env=self.env
            )
        except subprocess.TimeoutExpired as err:
            raise TemporaryError(f"`{' '.join(argv)}` did not answer within {timeout_s:.1f}s") from err
        except FileNotFoundError as err:
            raise PermanentError(f"`{argv[0]}` is not installed on this host") from err
        except OSError as err:
            raise TemporaryError(f"`{argv[0]}` could not start: {err}") from err
        return CommandOutput(tuple(argv), done.returncode, done.stdout, done.stderr)
