"""Drives the detection core over a list of events the way the node stage does, for tests that judge
the fused confidence rather than single detectors."""

from __future__ import annotations

from typing import Any

from detectors.catalog import default_catalog
from detectors.fusion import FusionConfig, fuse
from detectors.state import DetectState
from detectors.step import detect
from policy.lifecycle import pick
from policy.model import load_policy
from schemas.events import Envelope
from tests.builders import inventory

CAT = default_catalog()
CFG = FusionConfig()
POLICY = load_policy()


def run(events: list[Envelope], node: str = "n1") -> tuple[DetectState, float]:
    """The node's detection state after its inventory and ``events``, and the last event time."""
    st = DetectState(node)
    now = 0.0
    for e in [inventory(node), *events]:
        now = e.time.timestamp()
        detect(st, e, CAT, now)
    return st, now


def top(st: DetectState, now: float) -> Any:
    """The strongest fused finding at ``now`` (what the lifecycle would act on)."""
    return pick(fuse(st, now, CFG))
