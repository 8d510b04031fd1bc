"""Telemetry events: the envelope and one typed ``data`` model per event type.

Every message is ``{"id", "type", "source", "time", "node", "data"}``; ``type`` selects the data
model (a discriminated union), so one parse both routes and validates. Data models keep fields they
do not know (``extra="allow"``) so producers can add detail without waiting for a release.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from schemas.clock_events import MAX_MASK, clock_event_names
from schemas.common import (
    MAX_GPUS_PER_NODE,
    SCHEMA_VERSION,
    Counter,
    EventTime,
    GpuIndex,
    LongText,
    NodeId,
    ShortText,
)


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")


class Envelope(BaseModel):
    """Common header. ``id`` is the idempotency key; ``replay`` marks republished recordings."""

    model_config = ConfigDict(extra="allow")

    id: Annotated[str, Field(min_length=1, max_length=200)]
    source: Annotated[str, Field(min_length=1, max_length=200)]
    time: EventTime
    node: NodeId | None = None
    schema_version: Annotated[int, Field(ge=1, le=SCHEMA_VERSION)] = SCHEMA_VERSION
    replay: bool = False


class _NodeEnvelope(Envelope):
    """Most events are about exactly one node; for them ``node`` is required."""

    node: NodeId


# --- node.inventory -------------------------------------------------------------------------


class InventoryData(_Data):
    pool: ShortText
    rack: ShortText
    sku: ShortText
    gpus: Annotated[int, Field(ge=0, le=MAX_GPUS_PER_NODE)]
    gpu_bus_ids: list[Annotated[str, Field(max_length=32)]] | None = None
    labels: dict[str, ShortText] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bus_ids_match_gpus(self) -> InventoryData:
        if self.gpu_bus_ids is not None and len(self.gpu_bus_ids) > self.gpus:
            raise ValueError(f"gpu_bus_ids lists {len(self.gpu_bus_ids)} GPUs but gpus={self.gpus}")
        return self


class NodeInventory(_NodeEnvelope):
    type: Literal["node.inventory"] = "node.inventory"
    data: InventoryData


# --- gpu.sample -----------------------------------------------------------------------------


class GpuReading(_Data):
    """One GPU in one scrape. ``None`` means "not supported / not read", never zero."""

    index: GpuIndex
    temp_c: Annotated[float, Field(ge=-40, le=150)] | None = None
    power_w: Annotated[float, Field(ge=0, le=5000)] | None = None
    util: Annotated[float, Field(ge=0, le=100)] | None = None
    sbe_volatile: Counter | None = None
    dbe_volatile: Counter | None = None
    row_remap_pending: bool | None = None
    row_remap_failure: bool | None = None
    pcie_replay: Counter | None = None
    nvlink_crc_errors: Counter | None = None
    throttle_reasons: Annotated[
        list[Annotated[str, Field(max_length=64)]],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "array", "items": {"type": "string", "maxLength": 64}},
                    {"type": "integer", "minimum": 0, "maximum": MAX_MASK},
                ],
                "description": "Clock-event reason names, or the integer bitmask NVML and DCGM report "
                "(nvmlClocksEventReason* bits), decoded to names on validation.",
            },
            mode="validation",
        ),
    ] = Field(default_factory=list)

    recovery_action: Annotated[str, Field(max_length=32)] | None = None
    """The driver's recommended recovery (``schemas.gpu_recovery`` names: none, gpu_reset,
    node_reboot, drain_p2p, drain_and_reset, ...); null where the driver cannot say."""

    @field_validator("throttle_reasons", mode="before")
    @classmethod
    def _decode_mask(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return clock_event_names(value)
        return value


class GpuSampleData(_Data):
    gpus: Annotated[list[GpuReading], Field(max_length=MAX_GPUS_PER_NODE)]

    @model_validator(mode="after")
    def _unique_indices(self) -> GpuSampleData:
        seen = {g.index for g in self.gpus}
        if len(seen) != len(self.gpus):
            raise ValueError("gpus lists the same index twice")
        return self


class GpuSample(_NodeEnvelope):
    type: Literal["gpu.sample"] = "gpu.sample"
    data: GpuSampleData


# --- gpu.xid --------------------------------------------------------------------------------


class XidData(_Data):
    gpu: GpuIndex
    xid: Annotated[int, Field(ge=1, le=10_000)]
    pid: Annotated[int, Field(ge=0, le=2**31)] | None = None
    message: LongText | None = None


class GpuXid(_NodeEnvelope):
    type: Literal["gpu.xid"] = "gpu.xid"
    data: XidData


# --- node.kernel ----------------------------------------------------------------------------


class KernelData(_Data):
    line: Annotated[str, Field(min_length=1, max_length=8192)]


class NodeKernel(_NodeEnvelope):
    type: Literal["node.kernel"] = "node.kernel"
    data: KernelData


# --- node.condition -------------------------------------------------------------------------


class ConditionData(_Data):
    condition: Annotated[str, Field(min_length=1, max_length=128)]
    status: Literal["True", "False", "Unknown"]
    reason: ShortText = ""
    message: LongText = ""


class NodeCondition(_NodeEnvelope):
    type: Literal["node.condition"] = "node.condition"
    data: ConditionData


# --- workload.event -------------------------------------------------------------------------

WorkloadKind = Literal[
    "crashloop", "failed_inference", "latency_spike", "readiness_failure", "nccl_timeout", "eviction"
]


class WorkloadData(_Data):
    kind: WorkloadKind
    pod: ShortText | None = None
    job: ShortText | None = None
    gpus: Annotated[list[GpuIndex], Field(max_length=MAX_GPUS_PER_NODE)] | None = None
    value: Annotated[float, Field(ge=-1e12, le=1e12)] | None = None


class WorkloadEvent(_NodeEnvelope):
    type: Literal["workload.event"] = "workload.event"
    data: WorkloadData


# --- scheduler.state ------------------------------------------------------------------------


class SchedulerData(_Data):
    pending_pods: Counter
    unschedulable: dict[ShortText, Counter] = Field(default_factory=dict)
    evictions: Counter = 0
    allocatable_gpus: Annotated[int, Field(ge=0, le=10**7)] | None = None


class SchedulerState(Envelope):
    """Per node (allocatable GPUs as the scheduler sees them) or cluster-wide when ``node`` is null."""

    type: Literal["scheduler.state"] = "scheduler.state"
    data: SchedulerData


# --- change.event ---------------------------------------------------------------------------


class ChangeScope(_Data):
    nodes: list[NodeId] | None = None
    pool: ShortText | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> ChangeScope:
        if not self.nodes and not self.pool:
            raise ValueError("scope needs nodes or pool")
        return self


class ChangeData(_Data):
    kind: Literal["deploy", "node_image", "driver"]
    version: Annotated[str, Field(min_length=1, max_length=128)]
    scope: ChangeScope


class ChangeEvent(Envelope):
    """A change to a set of nodes or a whole pool; ``node`` is optional (pool-wide changes)."""

    type: Literal["change.event"] = "change.event"
    data: ChangeData


# --- tenant.report / repair.status (NICo-style, NICo's repair manual) -----------------------------------


class TenantReportData(_Data):
    instance_id: Annotated[str, Field(min_length=1, max_length=200)]
    category: Literal["HARDWARE", "NETWORK", "PERFORMANCE", "OTHER"]
    summary: ShortText
    details: LongText = ""


class TenantReport(_NodeEnvelope):
    type: Literal["tenant.report"] = "tenant.report"
    data: TenantReportData


class RepairStatusData(_Data):
    """What a repair tenant reports on release. Missing or unknown ``repair_status`` is kept as sent:
    NICo's repair manual handles such a release as a failed repair, so it must not be dropped."""

    repair_status: Annotated[str, Field(max_length=64)] | None = None
    repair_details: LongText = ""
    repair_eta: EventTime | None = None
    instance_id: ShortText | None = None


class RepairStatus(_NodeEnvelope):
    type: Literal["repair.status"] = "repair.status"
    data: RepairStatusData


# --- agent.heartbeat (collector liveness: silence is evidence, not health) ------------------


class HeartbeatData(_Data):
    collector: Annotated[str, Field(min_length=1, max_length=64)]
    interval_s: Annotated[float, Field(gt=0, le=86_400)]


class AgentHeartbeat(_NodeEnvelope):
    type: Literal["agent.heartbeat"] = "agent.heartbeat"
    data: HeartbeatData


# --- action.result (actuators close the loop through the node stage) ------------------------

ActionStatus = Literal["succeeded", "failed", "timeout", "refused", "in_progress"]


class ActionResultData(_Data):
    decision_id: Annotated[str, Field(min_length=1, max_length=200)]
    action: Annotated[str, Field(min_length=1, max_length=64)]
    step: Annotated[str, Field(max_length=128)] = ""
    status: ActionStatus
    validation: Literal["passed", "failed"] | None = None
    detail: LongText = ""
    playbook: ShortText | None = None
    playbook_version: ShortText | None = None
    gpu: GpuIndex | None = None


class ActionResult(_NodeEnvelope):
    type: Literal["action.result"] = "action.result"
    data: ActionResultData


Event = Annotated[
    NodeInventory
    | GpuSample
    | GpuXid
    | NodeKernel
    | NodeCondition
    | WorkloadEvent
    | SchedulerState
    | ChangeEvent
    | TenantReport
    | RepairStatus
    | AgentHeartbeat
    | ActionResult,
    Field(discriminator="type"),
]

EVENT_MODELS: dict[str, type[Envelope]] = {
    "node.inventory": NodeInventory,
    "gpu.sample": GpuSample,
    "gpu.xid": GpuXid,
    "node.kernel": NodeKernel,
    "node.condition": NodeCondition,
    "workload.event": WorkloadEvent,
    "scheduler.state": SchedulerState,
    "change.event": ChangeEvent,
    "tenant.report": TenantReport,
    "repair.status": RepairStatus,
    "agent.heartbeat": AgentHeartbeat,
    "action.result": ActionResult,
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)


def event_type_of(event: Envelope) -> str:
    """The ``type`` tag of any event model (typed access without a union-wide attribute lookup)."""
    return str(getattr(event, "type"))  # noqa: B009 - every Event subclass defines it


def gpu_indices(event: Envelope) -> list[int]:
    """GPU indices an event names, for range checks against the node's inventory."""
    if isinstance(event, GpuSample):
        return [g.index for g in event.data.gpus]
    if isinstance(event, GpuXid):
        return [event.data.gpu]
    if isinstance(event, WorkloadEvent):
        return list(event.data.gpus or [])
    if isinstance(event, ActionResult) and event.data.gpu is not None:
        return [event.data.gpu]
    return []


def as_dict(event: Envelope) -> dict[str, Any]:
    """JSON-ready dict in the wire layout (times as RFC 3339 strings)."""
    return event.model_dump(mode="json", exclude_none=False)
