"""The node agent's brain: one ActionRequest in, one ``action.result`` event out. No I/O of its own
(the GPU seam does the work, the loop in :mod:`agents.nodeagent.loop` moves messages).

Rules it enforces on every command, whatever sent it: only commands for its own node; a replayed
command never executes; a command older than ``max_age_s`` is refused (a day-old reboot order is not
an order); a repeated request id answers the first final result again without acting twice, also after
the reboot the agent performed (:mod:`agents.nodeagent.journal`); a GPU reset never runs under a
live compute process; a bad parameter is refused before anything runs (:mod:`actuators.nodeagent.params`).
(The loop checks the command's signature before any of this.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actuators.base import ActuatorError, Refused, TemporaryError
from actuators.nodeagent.params import ACTIONS, MUTATING, CommandParams, parse_params
from agents.nodeagent.gpu import DIAG_LEVELS, GpuOps
from agents.nodeagent.journal import RequestJournal
from schemas.actions import ActionRequest
from schemas.events import ActionResult

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
"""Linux's random id of the current boot (proc(5)): a different one means the node rebooted."""


def read_boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


class NodeAgent:
    def __init__(
        self,
        node: str,
        ops: GpuOps,
        bundle_dir: Path,
        max_age_s: float = 900.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        journal: RequestJournal | None = None,
        boot_id: Callable[[], str] = read_boot_id,
    ) -> None:
        """``journal``: the persistent request journal (None: in memory, for tests and one-shot use)."""
        self.node = node
        self.ops = ops
        self.bundle_dir = Path(bundle_dir)
        self.max_age_s = max_age_s
        self.clock = clock
        self.journal = journal or RequestJournal(None)
        self.boot_id = boot_id

    def handle(self, req: ActionRequest) -> ActionResult | None:
        """The result for ``req``, or None when it is for another node (not ours to answer)."""
        if req.node != self.node:
            return None
        boot = self.boot_id()
        entry = self.journal.get(req.id)
        if entry is not None and entry.result is not None:
            return ActionResult.model_validate_json(entry.result)
        if entry is not None:
            status, detail = self._interrupted(req, entry.boot_id != boot)
            result = self._result(req, status, detail, {}, None)
        else:
            if req.action in MUTATING:
                self.journal.start(req.id, boot)  # on disk before the action runs
            status, detail, outputs, validation = self._run(req)
            result = self._result(req, status, detail, outputs, validation)
            if status == "timeout":
                self.journal.forget(req.id)  # transient: a retry of the same request may run it again
                return result
        self.journal.finish(req.id, boot, result.model_dump_json())
        return result

    def failure(self, req: ActionRequest, detail: str) -> ActionResult:
        """A ``failed`` answer for a command whose handling raised (a bug): the loop sends it and
        moves on instead of crashing on the same command after every restart."""
        return self._result(req, "failed", detail, {}, None)

    @staticmethod
    def _interrupted(req: ActionRequest, rebooted: bool) -> tuple[str, str]:
        """A request this agent started but never answered (it died, or the node went down)."""
        if req.action == "reboot" and rebooted:
            return "succeeded", "the node rebooted (new boot id) after this request; not rebooted again"
        return "failed", (
            f"{req.action} was interrupted before it finished ({'after' if rebooted else 'without'} a "
            "reboot); not repeated: check the node"
        )

    def _run(self, req: ActionRequest) -> tuple[str, str, dict[str, Any], str | None]:
        if req.replay:
            return "refused", "a replayed command never executes", {}, None
        age = (self.clock() - req.time).total_seconds()
        if age > self.max_age_s:
            return (
                "refused",
                f"command is {age:.0f}s old (limit {self.max_age_s:.0f}s); not executed",
                {},
                None,
            )
        if req.action not in ACTIONS:
            return "refused", f"unknown action {req.action!r}; this agent runs {sorted(ACTIONS)}", {}, None
        params = parse_params(req.params)
        if isinstance(params, str):
            return "refused", params, {}, None
        try:
            return self._do(req, params)
        except Refused as err:
            return "refused", err.detail, {}, None
        except TemporaryError as err:
            return "timeout", err.detail, {}, None
        except ActuatorError as err:
            return "failed", err.detail, {}, None

    def _do(self, req: ActionRequest, params: CommandParams) -> tuple[str, str, dict[str, Any], str | None]:
        timeout_s = params.timeout_s
        if req.action == "gpu_reset":
            gpu = req.gpu if req.gpu is not None else params.gpu
            if gpu is None or not 0 <= int(gpu) < self.ops.count():
                raise Refused(f"gpu_reset needs a GPU index below {self.ops.count()}, got {gpu!r}")
            pids = self.ops.busy_pids(int(gpu))
            if pids:
                raise Refused(f"GPU {gpu} still runs compute processes {pids}; drain them first")
            return "succeeded", self.ops.reset(int(gpu), timeout_s), {"gpu": int(gpu)}, None
        if req.action == "dcgm_diag":
            level = next((v for v in (params.level, params.dcgm_level) if v is not None), 1)
            if level not in DIAG_LEVELS:
                raise Refused(f"dcgmi diag level must be one of {DIAG_LEVELS}, got {level}")
            report = self.ops.diag(level, timeout_s)
            out = {"level": level, "failures": list(report.failures), "tests": report.tests}
            return "succeeded", report.detail, out, "passed" if report.passed else "failed"
        if req.action == "collect_bundle":
            name = f"{self.node}-{req.decision_id}-{req.step}.tar.gz".replace("/", "_")
            sections = params.sections
            path = self.ops.bundle(self.bundle_dir / name, sections, timeout_s)
            return (
                "succeeded",
                f"bundle {path.name} ({path.stat().st_size} bytes)",
                {"bundle_path": str(path)},
                None,
            )
        if req.action == "cleanup_stale":
            # Runs only on a drained node (the playbook's precondition), so any compute process left
            # on a GPU is stale by definition.
            stopped = {i: self.ops.stop_processes(i) for i in range(self.ops.count())}
            stopped = {i: pids for i, pids in stopped.items() if pids}
            detail = f"stopped stale GPU processes {stopped}" if stopped else "no stale GPU processes found"
            return "succeeded", detail, {"stopped": {str(i): p for i, p in stopped.items()}}, None
        return "succeeded", self.ops.reboot(timeout_s), {}, None

    def _result(
        self, req: ActionRequest, status: str, detail: str, outputs: dict[str, Any], validation: str | None
    ) -> ActionResult:
        return ActionResult.model_validate(
            {
                "id": f"{req.id}/result",
                "source": f"node-agent/{self.node}",
                "time": self.clock(),
                "node": self.node,
                "data": {
                    "decision_id": req.decision_id,
                    "action": req.action,
                    "step": req.step,
                    "status": status,
                    "validation": validation,
                    "detail": detail,
                    "playbook": req.playbook,
                    "playbook_version": req.playbook_version,
                    "gpu": req.gpu,
                    "request_id": req.id,
                    "outputs": outputs,
                },
            }
        )
