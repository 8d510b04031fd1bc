"""Step results as ``action.result`` events: the loop back to the node stage and the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.events import ActionResult, ActionStatus, as_dict

Emitter = Callable[[dict[str, Any]], None]
SOURCE = "breakfix.workflow"


def action_result(
    *,
    decision_id: str,
    node: str,
    step: str,
    action: str,
    status: ActionStatus,
    time: datetime,
    detail: str = "",
    playbook: str | None = None,
    playbook_version: str | None = None,
    gpu: int | None = None,
    validation: str | None = None,
) -> dict[str, Any]:
    """A validated event dict. The id is stable per (decision, step, status), so an event re-emitted
    after a crash is a duplicate consumers drop, not a second action."""
    event = ActionResult.model_validate(
        {
            "id": f"{decision_id}/{step}:{status}",
            "source": SOURCE,
            "time": time,
            "node": node,
            "data": {
                "decision_id": decision_id,
                "action": action[:64],
                "step": step,
                "status": status,
                "validation": validation,
                "detail": detail[:16_000],
                "playbook": playbook,
                "playbook_version": playbook_version,
                "gpu": gpu,
            },
        }
    )
    return as_dict(event)
