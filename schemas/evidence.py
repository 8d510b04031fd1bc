"""Evidence: one signal's contribution to belief that a failure domain (on a node or GPU) is faulty."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import EventTime, GpuIndex, NodeId
from schemas.vocab import Attribution, FailureDomain


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    node: NodeId
    gpu: GpuIndex | None = None
    domain: FailureDomain
    signal: Annotated[str, Field(min_length=1, max_length=128)]
    weight: Annotated[float, Field(ge=0, le=1)]
    half_life_s: Annotated[float, Field(gt=0)] | None = None
    """Exponential decay half-life; ``None`` means the evidence does not decay (e.g. a failed row remap)."""
    decisive: bool = False
    source: str
    time: EventTime
    event_ids: list[str]
    attribution: Attribution = Attribution.HARDWARE
    detail: str = ""
