"""Tickets as playbook steps: ``create`` (a new ticket, or a comment on the node's open one) and
``close``, which a workflow can never do (workflows are automation; closing needs a human).

Enrichment comes from the step context and earlier steps' outputs: ``active_jobs`` from a scheduler
status step, the bundle from the step named by ``params.attach_from`` (its ``bundle_path`` output);
rack and SKU from an optional inventory lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from actuators.base import PermanentError, StepContext, StepResult, StepSpec
from actuators.registry import kind
from actuators.tickets.backend import HumanCloser
from actuators.tickets.model import Enrichment, TicketDraft
from actuators.tickets.service import TicketService

OPERATIONS = kind("ticket").operations
"""This kind's verbs, as registered in ``actuators.registry`` (one list for playbooks and actuator)."""
Inventory = Callable[[str], Mapping[str, Any]]


def _from_outputs(ctx: StepContext, key: str) -> Any:
    """The latest earlier step's output named ``key`` (steps run in order; dicts keep it)."""
    found = None
    for out in ctx.outputs.values():
        if key in out:
            found = out[key]
    return found


class TicketActuator:
    name = "ticket"

    def __init__(self, service: TicketService, inventory: Inventory | None = None) -> None:
        self.service = service
        self.inventory = inventory

    def supports(self, operation: str) -> bool:
        return operation in OPERATIONS

    def owns(self, node: str) -> bool:
        return False  # a ticket is not a hold on the node

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if step.operation == "close":
            HumanCloser.of(f"workflow {ctx.playbook}", "automation")  # always raises Refused
        if step.operation != "create":
            raise PermanentError(f"ticket actuator has no operation {step.operation!r}")
        ident = dict(self.inventory(ctx.node)) if self.inventory else {}
        jobs = _from_outputs(ctx, "active_jobs")
        enrichment = Enrichment(
            node=ctx.node,
            pool=ctx.pool or ident.get("pool"),
            rack=ident.get("rack"),
            sku=ident.get("sku"),
            gpu=ctx.gpu,
            active_jobs=int(jobs) if jobs is not None else None,
        )
        summary = str(step.params.get("summary") or f"[breakfix] {ctx.failure_class} on {ctx.node}")
        reasons = "\n".join(f"- {r}" for r in ctx.reasons)
        draft = TicketDraft(
            summary=summary[:255],
            description=f"{step.params.get('description', '')}\n{reasons}".strip(),
            enrichment=enrichment,
            decision_id=ctx.decision_id,
            labels=tuple(str(x) for x in step.params.get("labels", ())),
        )
        source = step.params.get("attach_from")
        bundle = (ctx.outputs.get(str(source)) or {}).get("bundle_path") if source else None
        filed = self.service.file(draft, Path(bundle) if bundle else None)
        verb = "opened" if filed.created else "updated" if filed.changed else "already filed"
        return StepResult(
            f"ticket {filed.ticket.key} {verb}",
            changed=filed.changed,
            outputs={
                "ticket": filed.ticket.key,
                "ticket_link": filed.ticket.link,
                "created": filed.created,
                "attachment": filed.attachment.name if filed.attachment else None,
            },
        )
