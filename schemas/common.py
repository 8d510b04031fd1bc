"""Vocabulary shared by every contract: versions, node states, failure domains, bounded numbers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

# Bumped only for a breaking change (a field removed, renamed or retyped). Additive changes
# (new optional fields, new event types) keep the version; consumers must ignore what they do not know.
SCHEMA_VERSION = 1

# Physical and sanity bounds. A value outside them is "absurd" (dead-lettered as absurd_value),
# distinct from a value of the wrong type ("invalid_value").
MAX_GPUS_PER_NODE = 64
MAX_COUNTER = 10**15
MAX_TEXT = 16_384

NodeId = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]
GpuIndex = Annotated[int, Field(ge=0, lt=MAX_GPUS_PER_NODE)]
Counter = Annotated[int, Field(ge=0, le=MAX_COUNTER)]
ShortText = Annotated[str, Field(max_length=1024)]
LongText = Annotated[str, Field(max_length=MAX_TEXT)]
EventTime = AwareDatetime
"""Event time: RFC 3339 with an explicit offset. Naive timestamps are refused (invalid_value)."""


class NodeState(StrEnum):
    """Lifecycle of a node (and of a GPU where evidence names one); see DESIGN.md "Node states"."""

    HEALTHY = "Healthy"
    SUSPECT = "Suspect"
    QUARANTINED = "Quarantined"
    REPAIRING = "Repairing"
    VALIDATING = "Validating"
    ESCALATED = "Escalated"


class FailureDomain(StrEnum):
    """Where a fault lives. Fusion corroborates within a domain across independent sources."""

    GPU_HARDWARE = "gpu_hardware"
    GPU_MEMORY = "gpu_memory"
    THERMAL_POWER = "thermal_power"
    NVLINK_FABRIC = "nvlink_fabric"
    NETWORK = "network"
    NODE_OS = "node_os"
    CONTAINER_RUNTIME = "container_runtime"
    WORKLOAD_SYMPTOM = "workload_symptom"
    MONITORING = "monitoring"


def epoch(t: datetime) -> float:
    """Seconds since the epoch; the pure core computes with floats, not datetimes, on its hot path."""
    return t.timestamp()
