"""The detector registry: which detector reads which event type, and the examples each one is
checked against.

Where this sits: :func:`detectors.step.detect` looks the event's type up here and calls the one
detector registered for it; nothing else in detection enumerates event types. A detector is a pure
function ``(state, event, catalog, now) -> evidence``: it may update the node's
:class:`~detectors.state.DetectState` (bounded), it reads time only from ``now`` (the stream clock),
and an event it has nothing to say about yields ``[]``. Event types that only feed state (inventory,
heartbeats, changes) register an *observer*, a detector that never returns evidence.

Every registration carries its own test parameters (:class:`Examples`), the way river's estimators
declare ``_unit_test_params``: the contract suite (``tests/contracts/test_detectors.py``) runs over
every registered detector and checks what all of them promise: the same events give the same
evidence, state stays bounded under a long stream, healthy events never become evidence, and the
signal examples do. Adding a detector is one module with the function and one :class:`DetectorSpec`
line in :data:`DETECTORS` below (docs/extend/detector.md).

>>> sorted(s.name for s in DETECTORS.values())[:3]
['change', 'condition', 'heartbeat']
>>> for_event("gpu.xid").name
'xid'
>>> for_event("action.result") is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from detectors.catalog import Catalog
from detectors.sample import detect_sample
from detectors.signals import (
    apply_inventory,
    check_silence,
    detect_condition,
    detect_scheduler,
    detect_tenant,
    detect_workload,
    note_change,
    note_heartbeat,
)
from detectors.state import DetectState
from detectors.xid import detect_kernel, detect_xid
from schemas.evidence import Evidence

EventData = tuple[str, dict[str, Any]]
"""An example event as ``(type, data)``: the contract suite wraps it in an envelope for one node."""


class Detector(Protocol):
    """What every detector is: pure, time from ``now``, state updated in place and bounded."""

    def __call__(self, st: DetectState, event: Any, cat: Catalog, now: float, /) -> list[Evidence]: ...


@dataclass(frozen=True)
class Examples:
    """A detector's test parameters. ``setup`` events come first (an inventory, say); each ``noise``
    event, alone or in a stream of thousands, must yield no evidence; the ``signal`` events, in
    order, must yield at least one piece of evidence."""

    setup: tuple[EventData, ...] = ()
    noise: tuple[EventData, ...] = ()
    signal: tuple[EventData, ...] = ()


@dataclass(frozen=True)
class DetectorSpec:
    """One registration: the event type read, the detector, and its examples."""

    name: str
    event_type: str
    detect: Detector
    examples: Examples = field(default_factory=Examples)


def observer(update: Callable[[DetectState, Any, float], None]) -> Detector:
    """A state-only handler as a detector: it records what the event says and never yields evidence."""

    def detect(st: DetectState, event: Any, cat: Catalog, now: float, /) -> list[Evidence]:
        update(st, event, now)
        return []

    detect.__doc__ = update.__doc__
    return detect


def _inventory(st: DetectState, event: Any, now: float) -> None:
    apply_inventory(st, event)


_INVENTORY: EventData = (
    "node.inventory",
    {"pool": "p1", "rack": "r1", "sku": "H100", "gpus": 8, "gpu_bus_ids": ["0000:18:00", "0000:2a:00"]},
)
_HEALTHY_GPU = {"temp_c": 55.0, "power_w": 400.0, "util": 90.0, "sbe_volatile": 0, "dbe_volatile": 0,
                "pcie_replay": 0, "nvlink_crc_errors": 0}  # fmt: skip


def _scrape(**overrides: Any) -> EventData:
    gpus = [{"index": i, **_HEALTHY_GPU, **(overrides if i == 0 else {})} for i in range(8)]
    return ("gpu.sample", {"gpus": gpus})


_EXT4_MOUNT = "EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode"
_XID79_LINE = "NVRM: Xid (PCI:0000:18:00): 79, pid=0, GPU has fallen off the bus."
"""The driver's Xid 79 line as NVIDIA's Xid catalog documents it (``GPU has fallen off the bus``)."""

_SPECS = (
    DetectorSpec(
        "sample", "gpu.sample", detect_sample,
        Examples(
            setup=(_INVENTORY,), noise=(_scrape(),), signal=(_scrape(), _scrape(row_remap_failure=True))
        ),
    ),
    DetectorSpec(
        "xid", "gpu.xid", detect_xid,
        # Xid 13 is an application's own fault (NVIDIA's Xid catalog); 79 is "GPU has fallen off the bus".
        Examples(noise=(("gpu.xid", {"gpu": 0, "xid": 13}),), signal=(("gpu.xid", {"gpu": 0, "xid": 79}),)),
    ),
    DetectorSpec(
        "kernel", "node.kernel", detect_kernel,
        Examples(
            setup=(_INVENTORY,),
            noise=(("node.kernel", {"line": _EXT4_MOUNT}),),
            signal=(("node.kernel", {"line": _XID79_LINE}),),
        ),
    ),
    DetectorSpec(
        "condition", "node.condition", detect_condition,
        Examples(
            noise=(("node.condition", {"condition": "Ready", "status": "True"}),),
            signal=(("node.condition", {"condition": "Ready", "status": "False", "reason": "KubeletDown"}),),
        ),
    ),
    DetectorSpec(
        "workload", "workload.event", detect_workload,
        Examples(signal=(("workload.event", {"kind": "nccl_timeout", "job": "j1", "gpus": [0]}),)),
    ),
    DetectorSpec(
        "scheduler", "scheduler.state", detect_scheduler,
        Examples(
            setup=(_INVENTORY,),
            noise=(("scheduler.state", {"pending_pods": 0, "allocatable_gpus": 8}),),
            signal=(("scheduler.state", {"pending_pods": 0, "allocatable_gpus": 6}),),
        ),
    ),
    DetectorSpec(
        "tenant", "tenant.report", detect_tenant,
        Examples(signal=(("tenant.report", {"instance_id": "i-1", "category": "HARDWARE", "summary": "x"}),)),
    ),
    DetectorSpec("inventory", "node.inventory", observer(_inventory), Examples(noise=(_INVENTORY,))),
    DetectorSpec(
        "heartbeat", "agent.heartbeat", observer(note_heartbeat),
        Examples(noise=(("agent.heartbeat", {"collector": "dcgm", "interval_s": 30}),)),
    ),
    DetectorSpec(
        "change", "change.event", observer(note_change),
        Examples(noise=(("change.event", {"kind": "driver", "version": "570.1", "scope": {"pool": "p1"}}),)),
    ),
)  # fmt: skip

DETECTORS: dict[str, DetectorSpec] = {}
"""Event type -> its detector. Event types absent here (repair status, action results) carry no
evidence: the node lifecycle reads them."""


def register(spec: DetectorSpec) -> DetectorSpec:
    """Add a detector for an event type that has none; a second one for the same type is refused
    (two detectors on one event would each see half the story)."""
    if spec.event_type in DETECTORS:
        raise ValueError(f"{spec.event_type} already has detector {DETECTORS[spec.event_type].name!r}")
    DETECTORS[spec.event_type] = spec
    return spec


def for_event(event_type: str) -> DetectorSpec | None:
    """The detector registered for an event type, or None when that type carries no evidence."""
    return DETECTORS.get(event_type)


TickDetector = Callable[[DetectState, Catalog, float], list[Evidence]]
"""A detector of time passing with no event for the node: the only way an absence becomes evidence."""


def _silence(st: DetectState, cat: Catalog, now: float) -> list[Evidence]:
    return check_silence(st, cat, now, f"tick:{st.node}:{int(now)}")


TICKS: dict[str, TickDetector] = {"silence": _silence}
"""Run on every tick of the node's clock (``detectors.step.tick``): a collector that missed its
heartbeats is monitoring evidence."""


for _spec in _SPECS:
    register(_spec)
