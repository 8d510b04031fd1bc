"""The SLURM actuator: drain, resume and reboot nodes on the site's slurmctld, job-aware and owned.

Verbs (``StepSpec.operation``):

- ``status``: read-only; node state, DRAINING/DRAINED phase, active job count from the controller.
- ``drain``: ``State=DRAIN`` with reason ``breakfix: <decision id> <why>``; with ``wait`` (default) it
  waits, within the step budget, until the node is DRAINED (no active jobs). Budget spent while jobs
  still run → :class:`Escalate` (the drain stays). ``max_active_jobs`` refuses to drain a busier node.
  A node someone else already drained is :class:`Refused` and left exactly as it is: automation
  does not work on a node an operator holds.
- ``resume``: UNDRAIN, only when the reason is ours; an operator's drain is :class:`Refused`.
- ``reboot``: ``scontrol reboot ASAP nextstate=RESUME|DRAIN reason=...``; with ``wait`` it waits for
  the node to come back (new boot time, reboot flags gone). Refused on an operator-held node, since
  ``nextstate=RESUME`` would lift their drain.

Idempotent: a repeat of the same step sees our reason with the same decision id and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actuators.base import (
    Escalate,
    PermanentError,
    Refused,
    StepContext,
    StepResult,
    StepSpec,
    TemporaryError,
    ensure_allowed,
)
from actuators.registry import kind
from actuators.slurm.client import SlurmClient
from actuators.slurm.nodes import SlurmNode, decision_of, reason_for

OPERATIONS = kind("slurm").operations
"""This kind's verbs, as registered in ``actuators.registry`` (one list for playbooks and actuator)."""
NEXT_STATES = frozenset({"RESUME", "DRAIN"})


class SlurmActuator:
    name = "slurm"

    def __init__(
        self,
        client: SlurmClient,
        poll_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.poll_s = poll_s
        self.sleep = sleep

    def supports(self, operation: str) -> bool:
        return operation in OPERATIONS

    def owns(self, node: str) -> bool:
        try:
            return self.client.node(node).ours
        except (TemporaryError, PermanentError):
            return False  # unknown is never "ours": nothing is lifted on a guess

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        handlers: dict[str, Callable[[StepSpec, StepContext], StepResult]] = {
            "status": self._status,
            "drain": self._drain,
            "resume": self._resume,
            "reboot": self._reboot,
        }
        if step.operation not in handlers:
            raise PermanentError(f"slurm actuator has no operation {step.operation!r}")
        return handlers[step.operation](step, ctx)

    # --- reads ---------------------------------------------------------------------------

    def _observe(self, node: str) -> tuple[SlurmNode, int, dict[str, Any]]:
        n = self.client.node(node)
        jobs = self.client.active_jobs(node)
        outputs = {
            "state": n.summary(),
            "phase": n.drain_phase(len(jobs)),
            "active_jobs": len(jobs),
            "reason": n.reason,
            "owned": n.ours,
            "gpus": n.gpus,
        }
        return n, len(jobs), outputs

    def _status(self, step: StepSpec, ctx: StepContext) -> StepResult:
        n, jobs, out = self._observe(ctx.node)
        return StepResult(f"{ctx.node} {n.summary()}, {jobs} active job(s)", changed=False, outputs=out)

    # --- drain ---------------------------------------------------------------------------

    def _drain(self, step: StepSpec, ctx: StepContext) -> StepResult:
        n, jobs, _ = self._observe(ctx.node)
        changed = False
        if n.drain_flag and not n.ours:
            raise Refused(
                f"{ctx.node} is already drained by someone else ({n.reason_set_by}: {n.reason!r}); "
                "automation does not act on a node an operator holds"
            )
        if n.drain_flag:
            note = f"already drained by decision {decision_of(n.reason)}"
        else:
            limit = step.params.get("max_active_jobs")
            if limit is not None and jobs > int(limit):
                raise Refused(f"{ctx.node} runs {jobs} job(s), more than max_active_jobs={limit}")
            ensure_allowed(ctx)
            why = str(step.params.get("reason") or ctx.failure_class or step.name)
            self.client.drain(ctx.node, reason_for(ctx.decision_id, why))
            changed, note = True, "drained"
        if step.params.get("wait", True):
            self._wait_drained(ctx)
        _, _, out = self._observe(ctx.node)
        return StepResult(f"{ctx.node} {note}; {out['phase']} with {out['active_jobs']} job(s)", changed, out)

    def _wait_drained(self, ctx: StepContext) -> None:
        while True:
            n = self.client.node(ctx.node)
            jobs = len(self.client.active_jobs(ctx.node))
            if n.drain_phase(jobs) == "DRAINED":
                return
            if ctx.remaining_s() <= 0:
                raise Escalate(
                    f"{ctx.node} still DRAINING with {jobs} active job(s) when the step's budget ran out; "
                    "the drain is kept for a person to decide"
                )
            self.sleep(min(self.poll_s, max(ctx.remaining_s(), 0.01)))

    # --- resume --------------------------------------------------------------------------

    def _resume(self, step: StepSpec, ctx: StepContext) -> StepResult:
        n, _, out = self._observe(ctx.node)
        if not n.drain_flag:
            return StepResult(f"{ctx.node} is not drained ({n.summary()})", changed=False, outputs=out)
        if not n.ours:
            raise Refused(
                f"{ctx.node} was drained by someone else ({n.reason_set_by}: {n.reason!r}); "
                "only drains with our reason are lifted"
            )
        ensure_allowed(ctx)
        self.client.undrain(ctx.node)
        _, _, out = self._observe(ctx.node)
        return StepResult(f"{ctx.node} resumed (was {n.reason!r})", changed=True, outputs=out)

    # --- reboot --------------------------------------------------------------------------

    def _reboot(self, step: StepSpec, ctx: StepContext) -> StepResult:
        nextstate = str(step.params.get("nextstate", "RESUME")).upper()
        if nextstate not in NEXT_STATES:
            raise PermanentError(f"reboot nextstate must be one of {sorted(NEXT_STATES)}, not {nextstate}")
        n, _, _ = self._observe(ctx.node)
        if (n.drain_flag or n.rebooting) and not n.ours:
            raise Refused(
                f"{ctx.node} is held by someone else ({n.reason_set_by}: {n.reason!r}); a reboot with "
                f"nextstate={nextstate} could lift their hold"
            )
        already = n.rebooting and decision_of(n.reason) == ctx.decision_id
        if not already:
            ensure_allowed(ctx)
            why = str(step.params.get("reason") or f"reboot {ctx.failure_class}".strip())
            self.client.reboot(ctx.node, reason_for(ctx.decision_id, why), nextstate)
        if step.params.get("wait", True):
            self._wait_rebooted(ctx, n.boot_time, nextstate)
        _, _, out = self._observe(ctx.node)
        verb = "reboot already requested" if already else "reboot requested"
        return StepResult(f"{ctx.node} {verb} (nextstate={nextstate}); now {out['state']}", not already, out)

    def _wait_rebooted(self, ctx: StepContext, boot_before: int, nextstate: str) -> None:
        while True:
            n = self.client.node(ctx.node)
            back = n.boot_time > boot_before and not n.rebooting and n.state != "DOWN"
            if back and (nextstate == "DRAIN" or not n.drain_flag):
                return
            if ctx.remaining_s() <= 0:
                raise Escalate(
                    f"{ctx.node} did not come back from its reboot within the step's budget "
                    f"(now {n.summary()})"
                )
            self.sleep(min(self.poll_s, max(ctx.remaining_s(), 0.01)))
