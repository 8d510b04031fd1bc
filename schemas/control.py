"""Control messages on the compacted control topic: the operator's levers over automation."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import SCHEMA_VERSION, EventTime


class ControlKind(StrEnum):
    KILLSWITCH = "killswitch"
    APPROVAL = "approval"
    MODE = "mode"
    BREAKER_RESET = "breaker_reset"
    EMERGENCY = "emergency"
    EXCLUSION = "exclusion"


class ControlMessage(BaseModel):
    """``scope`` is ``global``, ``pool:<name>``, ``class:<failure class>`` or ``decision:<id>``.
    The topic is compacted on ``key`` so the latest lever per scope survives forever."""

    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=200)]
    time: EventTime
    kind: ControlKind
    scope: Annotated[str, Field(min_length=1, max_length=256)] = "global"
    value: dict[str, Any] = Field(default_factory=dict)
    actor: Annotated[str, Field(min_length=1, max_length=200)]
    role: str = "operator"
    reason: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.scope}"
