"""The controller's side of node-agent commands: a playbook step becomes an ActionRequest, a
transport delivers it to the node's agent and brings back its ``action.result``.

The request id is the step's idempotency key (decision id + step), so a retried or resumed step
reaches the agent as the same request and the agent answers its first result instead of acting
again. Agent statuses map onto the actuator vocabulary: ``refused`` → Refused, ``failed`` →
PermanentError, ``timeout`` → TemporaryError; a dcgm diag's verdict comes back as ``validation``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from actuators.base import (
    PermanentError,
    Refused,
    StepContext,
    StepResult,
    StepSpec,
    TemporaryError,
    ensure_allowed,
)
from actuators.nodeagent.params import ACTIONS, MUTATING
from schemas.actions import ActionRequest
from schemas.events import ActionResult


class CommandTransport(Protocol):
    def request(self, req: ActionRequest, timeout_s: float) -> ActionResult:
        """Deliver ``req`` to its node's agent and return the agent's result; TemporaryError when no
        result arrives within ``timeout_s``."""
        ...


class NodeAgentActuator:
    name = "node_agent"

    def __init__(
        self, transport: CommandTransport, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ):
        self.transport = transport
        self.clock = clock

    def supports(self, operation: str) -> bool:
        return operation in ACTIONS

    def owns(self, node: str) -> bool:
        return False  # commands leave no hold on the node

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if step.operation not in ACTIONS:
            raise PermanentError(f"node agent has no operation {step.operation!r}")
        if step.operation in MUTATING:
            ensure_allowed(ctx)
        req = ActionRequest(
            id=ctx.idempotency_key,
            decision_id=ctx.decision_id,
            node=ctx.node,
            gpu=ctx.gpu,
            action=step.operation,
            playbook=ctx.playbook,
            playbook_version=ctx.playbook_version,
            step=ctx.step,
            params={**step.params, "timeout_s": max(1.0, ctx.remaining_s() - 1.0)},
            time=self.clock(),
        )
        result = self.transport.request(req, ctx.remaining_s())
        d = result.data
        outputs = dict((d.model_extra or {}).get("outputs") or {})
        if d.status == "refused":
            raise Refused(f"node agent refused {step.operation}: {d.detail}")
        if d.status == "failed":
            raise PermanentError(f"node agent: {d.detail}")
        if d.status in ("timeout", "in_progress"):
            raise TemporaryError(f"node agent: {d.detail or d.status}", retry_after_s=5.0)
        return StepResult(
            d.detail, changed=step.operation in MUTATING, outputs=outputs, validation=d.validation
        )
