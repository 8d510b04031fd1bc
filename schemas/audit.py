"""Audit records: every API/CLI/MCP call, allowed or refused, and every control change."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import SCHEMA_VERSION, EventTime


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    time: EventTime
    actor: str
    role: str
    initiator: Literal["human", "agent", "automation"]
    surface: Literal["api", "cli", "mcp", "control", "workflow"]
    action: str
    target: str = ""
    allowed: bool
    status: int | None = None
    detail: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
