"""Simulated actuators: every playbook step kind, acting on a simulated fleet instead of real hosts.

Where this sits: ``breakfix demo`` and the actuator-stage tests register these in place of the
Kubernetes, SLURM, node-agent, ticket and health-override actuators (the :class:`~actuators.base.Actuator`
protocol is the seam; nothing is patched). They follow the same safety contract as the real ones:
mutating operations call :func:`~actuators.base.ensure_allowed` at the last moment, and a repeated
idempotency key (decision id + step) is a no-op that reports ``changed=False``.

What is true about the fleet comes from the simulator's ground truth (``breakfix simulate --labels``),
handed in as :class:`SimFault` records: a fault stays active until a successful repair at least as
strong as the fault's ``repair`` (gpu_reset < reboot < reimage < rma) ran after it started, or, for a
transient fault, any repair. So an Xid 79 that a reboot clears validates clean after the reboot
playbook, while a row-remap failure that needs an RMA fails validation after a GPU reset and the
workflow escalates. Step failures are drawn from a hash of ``(seed, idempotency key)``: the same seed
gives the same run whatever the call order.

Every mutation is appended to an optional ledger file (JSON lines, fsynced) before the step returns.
The ledger is the fleet's durable memory, as a real cluster would remember a cordon: a restarted
process reloads it, so a step repeated after a crash finds its work done and changes nothing again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actuators.base import (
    Actuator,
    PermanentError,
    StepContext,
    StepResult,
    StepSpec,
    ensure_allowed,
)
from actuators.registry import kind

# Repair strength of what was done to a node: a fault needing ``reboot`` survives a ``gpu_reset``;
# a drain repairs nothing.
REPAIR_STRENGTH: dict[str, int] = {"drain": 0, "gpu_reset": 1, "reboot": 2, "reimage": 3, "rma": 4}

# Simulated time each operation takes on the fleet's clock (seconds of fleet time, not wall time).
# The one table of the simulated world: the demo's and ``--simulate``'s steps wait these, and offline
# replay answers a decision after its action's operation (``validate``: the validation ``run``).
DURATIONS_S: dict[str, float] = {
    "cordon": 2.0,
    "uncordon": 2.0,
    "resume": 2.0,
    "drain": 60.0,
    "drain_gpu": 30.0,
    "quarantine_gpu": 30.0,
    "return_gpu": 2.0,
    "gpu_reset": 45.0,
    "reboot": 240.0,
    "cleanup_stale": 60.0,
    "collect_bundle": 20.0,
    "dcgm_diag": 60.0,
    "run": 120.0,
    "create": 1.0,
    "set": 1.0,
    "reimage": 3600.0,
    "rma": 3 * 86_400.0,
}

# The kinds the simulated fleet stands in for (NICo is a target of its own, not simulated), each with
# every verb its registration (``actuators.registry``) offers.
SIMULATED_KINDS = ("kubernetes", "slurm", "node_agent", "validate", "ticket", "health_override")
OPERATIONS: dict[str, frozenset[str]] = {k: kind(k).operations for k in SIMULATED_KINDS}


@dataclass(frozen=True)
class SimFault:
    """One ground-truth fault (a simulator label with ``truth="fault"``); times are epoch seconds."""

    id: str
    node: str
    start: float
    end: float | None = None
    gpu: int | None = None
    repair: str | None = None
    persistent: bool = True


@dataclass(frozen=True)
class Repair:
    """Something done to a node that may clear a fault: when it finished, what, on which GPU."""

    time: float
    operation: str
    gpu: int | None = None


def still_broken(
    faults: Iterable[SimFault], repairs: Iterable[Repair], gpu: int | None, at: float
) -> SimFault | None:
    """The first of one node's ``faults`` (on ``gpu`` when given) active at ``at`` that no repair
    finished after it started has cleared: a transient fault clears with any repair, a persistent one
    with a repair at least as strong as its ``repair`` (a GPU reset when it names none)."""
    done = [r for r in repairs if r.time <= at and REPAIR_STRENGTH.get(r.operation, 0) >= 1]
    for f in faults:
        if gpu is not None and f.gpu is not None and f.gpu != gpu:
            continue
        if at < f.start or (f.end is not None and at >= f.end):
            continue
        need = REPAIR_STRENGTH.get(f.repair or "gpu_reset", 1) if f.persistent else 1
        if not any(
            r.time >= f.start and (f.gpu is None or r.gpu is None or r.gpu == f.gpu)
            and REPAIR_STRENGTH[r.operation] >= need
            for r in done
        ):  # fmt: skip
            return f
    return None


@dataclass(frozen=True)
class Mutation:
    """One change the simulated actuators made, as the ledger records it."""

    key: str
    node: str
    kind: str
    operation: str
    time: float
    gpu: int | None = None


class SimulatedFleet:
    """Ground truth plus everything the simulated actuators did to it.

    ``now`` returns the fleet's clock in epoch seconds (the demo maps wall time onto the recording's
    event time); ``wait`` is called with an operation's simulated duration (the demo sleeps it scaled
    down, tests pass a no-op). ``failure_probability`` makes that share of mutating steps fail.
    """

    def __init__(
        self,
        faults: Iterable[SimFault] = (),
        *,
        seed: int = 0,
        now: Callable[[], float],
        wait: Callable[[float], None] = lambda s: None,
        failure_probability: float = 0.0,
        ledger: Path | None = None,
    ) -> None:
        if not 0.0 <= failure_probability <= 1.0:
            raise ValueError("failure_probability lies in [0, 1]")
        self.faults: dict[str, list[SimFault]] = {}
        for f in faults:
            self.faults.setdefault(f.node, []).append(f)
        self.seed, self.now, self.wait = seed, now, wait
        self.failure_probability = failure_probability
        self.ledger = ledger
        self.mutations: list[Mutation] = []
        self._done: dict[str, Mutation] = {}
        self._lock = threading.Lock()
        if ledger is not None and ledger.exists():
            for line in ledger.read_text().splitlines():
                if line.strip():
                    m = Mutation(**json.loads(line))
                    self.mutations.append(m)
                    self._done[m.key] = m

    # --- ground truth ---------------------------------------------------------------------------

    def broken(self, node: str, gpu: int | None, at: float) -> SimFault | None:
        """The first fault on ``node`` (and ``gpu`` when given) still active at ``at``, if any."""
        repairs = [Repair(m.time, m.operation, m.gpu) for m in self.mutations if m.node == node]
        return still_broken(self.faults.get(node, ()), repairs, gpu, at)

    def active_jobs(self, node: str) -> int | None:
        """The simulated fleet runs no scheduler: every node counts as idle (NodeFacts)."""
        return 0

    # --- bookkeeping ------------------------------------------------------------------------------

    def done(self, key: str) -> Mutation | None:
        with self._lock:
            return self._done.get(key)

    def record(self, m: Mutation) -> None:
        """Remember a mutation, durably first when a ledger is kept."""
        with self._lock:
            if self.ledger is not None:
                with open(self.ledger, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(m.__dict__) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            self.mutations.append(m)
            self._done[m.key] = m

    def fails(self, key: str) -> bool:
        """Whether this step fails, deterministically from the seed and the idempotency key."""
        digest = hashlib.sha256(f"{self.seed}/{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.failure_probability


class SimulatedActuator:
    """One step kind (``kubernetes``, ``node_agent``, ...) acting on a :class:`SimulatedFleet`."""

    def __init__(self, name: str, fleet: SimulatedFleet) -> None:
        try:  # any registered kind (a plugin's too) acts out the verbs it registered
            registered = kind(name)
        except KeyError as err:
            raise ValueError(f"no simulated actuator for {name!r}: {err.args[0]}") from None
        self.operations, self.read_only = registered.operations, registered.read_only
        self.name = name
        self.fleet = fleet

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    def owns(self, node: str) -> bool:
        """Every hold in the simulated fleet was set by this product (no operator acts there)."""
        return True

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        op = step.operation
        if not self.supports(op):
            raise PermanentError(f"simulated {self.name} has no operation {op!r}")
        if op in self.read_only:
            self.fleet.wait(DURATIONS_S.get(op, 1.0))
            return self._check(op, step, ctx)
        if step.mutating:
            ensure_allowed(ctx)
        prior = self.fleet.done(ctx.idempotency_key)
        if prior is not None:
            return StepResult(f"{self.name}.{op} already done at {prior.time:.0f}", changed=False)
        self.fleet.wait(DURATIONS_S.get(op, 1.0))
        if self.fleet.fails(ctx.idempotency_key):
            raise PermanentError(f"simulated {self.name}.{op} failure on {ctx.node}")
        self.fleet.record(Mutation(ctx.idempotency_key, ctx.node, self.name, op, self.fleet.now(), ctx.gpu))
        return StepResult(f"simulated {self.name}.{op} on {ctx.node}", outputs=self._outputs(op, ctx))

    def _check(self, op: str, step: StepSpec, ctx: StepContext) -> StepResult:
        """Read-only operations: validation and diagnostics judge the fleet as it is now."""
        if op == "collect_bundle":
            sections = list(step.params.get("sections", []))
            return StepResult(
                f"bundle of {len(sections)} sections", changed=False, outputs={"bundle": sections}
            )
        gpu = ctx.gpu if (op == "dcgm_diag" or step.params.get("gpu_only")) else None
        fault = self.fleet.broken(ctx.node, gpu, self.fleet.now())
        if fault is not None:
            return StepResult(f"fault {fault.id} still present", changed=False, validation="failed")
        return StepResult("simulated burn-in clean", changed=False, validation="passed")

    def _outputs(self, op: str, ctx: StepContext) -> dict[str, Any]:
        if op == "create":
            return {"ticket": f"SIM-{ctx.decision_id[:12]}"}
        return {}


class Recorded:
    """A real actuator acting for one kind of a simulated fleet (the local stack's node agents, whose
    GPUs are simulated): it does the work, and the fleet records each change it made as a repair, so
    the simulated validation judges the node as repaired, as it would after the simulated kind."""

    def __init__(self, inner: Actuator, fleet: SimulatedFleet) -> None:
        self.inner, self.fleet = inner, fleet
        self.name = inner.name

    def supports(self, operation: str) -> bool:
        return self.inner.supports(operation)

    def owns(self, node: str) -> bool:
        return self.inner.owns(node)

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        result = self.inner.execute(step, ctx)
        if result.changed and self.fleet.done(ctx.idempotency_key) is None:
            self.fleet.record(
                Mutation(ctx.idempotency_key, ctx.node, self.name, step.operation, self.fleet.now(), ctx.gpu)
            )
        return result


def simulated_actuators(fleet: SimulatedFleet) -> list[Actuator]:
    """One simulated actuator per step kind, ready for a :class:`~actuators.workflow.WorkflowEngine`."""
    return [SimulatedActuator(name, fleet) for name in SIMULATED_KINDS]
