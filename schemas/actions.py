"""Commands to actuators and node agents. Results come back as ``action.result`` events."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import SCHEMA_VERSION, EventTime, GpuIndex, NodeId


class ActionRequest(BaseModel):
    """``id`` = decision id + step: the key that makes a retried step a no-op."""

    model_config = ConfigDict(frozen=True)

    id: str
    decision_id: str
    node: NodeId
    gpu: GpuIndex | None = None
    action: str
    playbook: str
    playbook_version: str
    step: str
    params: dict[str, Any] = Field(default_factory=dict)
    time: EventTime
    initiator: str = "automation"
    replay: bool = False
    schema_version: int = SCHEMA_VERSION
