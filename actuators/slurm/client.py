"""The SLURM controller as the actuator sees it: reads through ``sinfo``/``squeue --json``, writes
through ``scontrol`` (slurmrestd 0.0.38 cannot drain or resume nodes).

Every command carries a timeout (a wedged slurmctld must not wedge a workflow). A controller that does
not answer is a :class:`TemporaryError`; a node the controller does not know is a PermanentError.
"""

from __future__ import annotations

import json
from typing import Any

from actuators.base import PermanentError, TemporaryError
from actuators.commands import CommandOutput, CommandRunner
from actuators.slurm.nodes import SlurmNode, active_jobs_on, parse_nodes


class SlurmClient:
    def __init__(self, runner: CommandRunner, timeout_s: float = 10.0) -> None:
        self.runner = runner
        self.timeout_s = timeout_s

    def _run(self, *argv: str) -> CommandOutput:
        return self.runner.run(argv, self.timeout_s)

    def _json(self, *argv: str) -> dict[str, Any]:
        out = self._run(*argv)
        if not out.ok:
            raise TemporaryError(f"controller unavailable: {out.describe()}", retry_after_s=2.0)
        try:
            doc = json.loads(out.stdout)
        except json.JSONDecodeError as err:
            raise TemporaryError(f"`{' '.join(argv)}` printed no JSON: {err}") from err
        if not isinstance(doc, dict):
            raise TemporaryError(f"`{' '.join(argv)}` printed JSON that is not an object")
        return doc

    def node(self, name: str) -> SlurmNode:
        try:
            nodes = parse_nodes(self._json("sinfo", "--json"))
        except ValueError as err:
            raise TemporaryError(str(err)) from err
        if name not in nodes:
            raise PermanentError(f"SLURM does not know node {name!r}")
        return nodes[name]

    def active_jobs(self, name: str) -> list[int]:
        try:
            return active_jobs_on(self._json("squeue", "--json"), name)
        except ValueError as err:
            raise TemporaryError(str(err)) from err

    def _update(self, *argv: str) -> None:
        out = self._run("scontrol", *argv)
        if out.ok:
            return
        if "Invalid node name" in out.stderr:
            raise PermanentError(out.describe())
        raise TemporaryError(out.describe(), retry_after_s=2.0)

    def drain(self, name: str, reason: str) -> None:
        self._update("update", f"NodeName={name}", "State=DRAIN", f"Reason={reason}")

    def undrain(self, name: str) -> None:
        """Clear the DRAIN flag only (UNDRAIN, unlike RESUME, leaves a DOWN node down)."""
        self._update("update", f"NodeName={name}", "State=UNDRAIN")

    def reboot(self, name: str, reason: str, nextstate: str) -> None:
        """``scontrol reboot ASAP nextstate=... reason=...``: drain now, reboot once idle."""
        self._update("reboot", "ASAP", f"nextstate={nextstate}", f"reason={reason}", name)


class SlurmNodeFacts:
    """The workflow engine's ``NodeFacts`` from the controller: active jobs on a node, or None when
    the controller cannot say (unknown is never zero, so a precondition then fails)."""

    def __init__(self, client: SlurmClient) -> None:
        self.client = client

    def active_jobs(self, node: str) -> int | None:
        try:
            return len(self.client.active_jobs(node))
        except (TemporaryError, PermanentError):
            return None
