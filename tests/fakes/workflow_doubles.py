"""Test doubles for the workflow engine: a switchable Safety and a recording actuator.

They stand in for the parts that need hardware or another helper's code (node agent, validation);
the engine and the Kubernetes actuator under test are real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from actuators.base import StepContext, StepResult, StepSpec, ensure_allowed
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, GuardCheck, Mode

OPS: dict[str, set[str]] = {
    "kubernetes": {"cordon", "uncordon", "drain", "drain_gpu", "quarantine_gpu", "return_gpu"},
    "node_agent": {"gpu_reset", "reboot", "collect_bundle", "cleanup_stale"},
    "validate": {"run"},
    "ticket": {"create"},
    "health_override": {"set"},
}
"""Operations of every actuator kind the shipped playbooks use: a recording double per kind."""


@dataclass
class SwitchSafety:
    """Kill switch and exclusions the test flips; ``checks`` counts last-moment re-checks."""

    killswitch: bool = False
    killed_pools: set[str] = field(default_factory=set)
    excluded_nodes: set[str] = field(default_factory=set)
    checks: int = 0
    flip_after: int | None = None  # engage the kill switch after this many checks (a race)

    def killswitch_on(self, pool: str | None) -> bool:
        self.checks += 1
        if self.flip_after is not None and self.checks > self.flip_after:
            self.killswitch = True
        return self.killswitch or (pool is not None and pool in self.killed_pools)

    def excluded(self, node: str, pool: str | None) -> bool:
        return node in self.excluded_nodes


Behaviour = Callable[[StepSpec, StepContext], StepResult]


class RecordingActuator:
    """An actuator of any kind that records calls and runs a per-operation behaviour (default: ok)."""

    def __init__(
        self, name: str, operations: set[str], behaviours: dict[str, Behaviour] | None = None
    ) -> None:
        self.name = name
        self.operations = operations
        self.behaviours = behaviours or {}
        self.calls: list[tuple[str, str]] = []  # (step name, operation)
        self._lock = threading.Lock()

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    def owns(self, node: str) -> bool:
        return False

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if step.mutating:
            ensure_allowed(ctx)
        with self._lock:
            self.calls.append((step.name, step.operation))
        behaviour = self.behaviours.get(step.operation)
        if behaviour is not None:
            return behaviour(step, ctx)
        validation = "passed" if self.name == "validate" else None
        return StepResult(detail=f"{self.name}.{step.operation} ok", validation=validation)


def block_forever(marker: str) -> Behaviour:
    """A behaviour that writes ``marker`` then hangs: the moment a test kills the engine."""

    def run(step: StepSpec, ctx: StepContext) -> StepResult:
        with open(marker, "w") as fh:
            fh.write(step.name)
        time.sleep(3600)
        return StepResult()

    return run


def xid79_decision(node: str = "gpu-node-1", decision_id: str = "dec-xid79", **over: object) -> Decision:
    """An executable Xid 79 ("GPU has fallen off the bus") decision as the guard would emit it."""
    fields: dict[str, object] = {
        "id": decision_id,
        "time": datetime.now(UTC),
        "node": node,
        "gpu": 3,
        "from_state": NodeState.SUSPECT,
        "to_state": NodeState.QUARANTINED,
        "trigger": "xid_79",
        "failure_class": "gpu_hardware",
        "confidence": 0.97,
        "action": ActionKind.GPU_RESET,
        "mode": Mode.AUTO,
        "executable": True,
        "reasons": ["Xid 79 on GPU 3: GPU has fallen off the bus"],
        "evidence": ["ev-xid-1"],
        "guard": [GuardCheck(name="headroom", passed=True, figures={"pool_free_gpus": 64})],
        "policy_version": "test-1",
    }
    fields.update(over)
    return Decision.model_validate(fields)
