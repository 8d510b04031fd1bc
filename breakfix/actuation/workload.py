"""The validation's test workload as a site command: the site knows how to run a short GPU job on
one node (a Kubernetes Job pinned to it, an ``srun -w``, an ssh burn-in), so it hands us the command.

``{node}`` and ``{gpu}`` in the command are replaced (``{gpu}`` by ``all`` when the request names no
GPU), and ``{taint_key}`` by the product's taint key: on a DRA cluster the GPU under validation
carries the product's DeviceTaintRule, so the site's job puts ``{key: <taint_key>, operator: Exists}``
in its ResourceClaim's tolerations (docs/operate/kubernetes-dra.md shows one). Exit status 0 passes;
a command that cannot start or hangs past the step's budget fails: a requested check that could not
run is not a pass.
"""

from __future__ import annotations

import shlex

from actuators.base import TAINT_KEY, ActuatorError
from actuators.commands import CommandRunner, SubprocessRunner


class CommandWorkload:
    """A :class:`~actuators.validation.WorkloadHook` that runs one site command per validation."""

    def __init__(self, command: str, runner: CommandRunner | None = None) -> None:
        if not shlex.split(command):
            raise ValueError("the test workload command is empty")
        self.command = command
        self.runner = runner or SubprocessRunner()

    def run(self, node: str, gpu: int | None, timeout_s: float) -> tuple[bool, str]:
        argv = [
            part.replace("{node}", node)
            .replace("{gpu}", "all" if gpu is None else str(gpu))
            .replace("{taint_key}", TAINT_KEY)
            for part in shlex.split(self.command)
        ]
        try:
            out = self.runner.run(argv, timeout_s)
        except ActuatorError as err:
            return False, err.detail
        tail = (out.stdout or out.stderr).strip().splitlines()[-1:] or [""]
        verdict = "passed" if out.ok else f"failed (exit {out.returncode})"
        return out.ok, f"test workload `{argv[0]}` {verdict}: {tail[0][:200]}".rstrip(": ")
