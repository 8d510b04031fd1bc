"""Validation before a node returns to service: the ``validate`` actuator's ``run`` step.

Checks, in order (each only when the playbook asks for it), all of which must pass:

1. ``dcgm_level``: ``dcgmi diag -r N`` on the node through its agent;
2. allocatable GPUs back: the scheduler sees as many GPUs as the node should have (Kubernetes
   device-plugin allocatable, or SLURM GRES), via an injected :class:`GpuCapacity`;
3. ``test_workload``: a site hook runs a short job on the node (fails closed when none is set up:
   a requested check that cannot run is not a pass);
4. ``quiet_s``: service-level signals stay quiet for the hysteresis time, measured from the start of
   validation; any symptom inside the window fails it. Nothing retries a failed validation: the step
   fails with :class:`PermanentError` and the workflow escalates (DESIGN: a failed validation
   escalates, nothing loops).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from actuators.base import Actuator, PermanentError, StepContext, StepResult, StepSpec
from actuators.slurm.client import SlurmClient


class GpuCapacity(Protocol):
    def gpus(self, node: str) -> tuple[int | None, int | None]:
        """(allocatable now, expected); None where unknown (unknown never passes)."""
        ...


class WorkloadHook(Protocol):
    def run(self, node: str, gpu: int | None, timeout_s: float) -> tuple[bool, str]: ...


class Symptoms(Protocol):
    def last_symptom(self, node: str) -> datetime | None:
        """Event time of the node's latest service-level symptom (workload error, Xid, ...)."""
        ...


class SlurmCapacity:
    """SLURM: GPUs in the node's GRES as registered by its slurmd (a lost device file shows here)."""

    def __init__(self, client: SlurmClient, expected: Callable[[str], int | None]) -> None:
        self.client = client
        self.expected = expected

    def gpus(self, node: str) -> tuple[int | None, int | None]:
        n = self.client.node(node)
        allocatable = None if n.state in ("DOWN", "UNKNOWN") or "INVALID_REG" in n.flags else n.gpus
        return allocatable, self.expected(node)


class KubernetesCapacity:
    """Kubernetes: ``status.allocatable[resource]`` against ``status.capacity`` of a CoreV1Api node."""

    def __init__(self, core_v1: Any, resource: str = "nvidia.com/gpu") -> None:
        self.api = core_v1
        self.resource = resource

    def gpus(self, node: str) -> tuple[int | None, int | None]:
        status = self.api.read_node(node).status
        alloc = (status.allocatable or {}).get(self.resource)
        cap = (status.capacity or {}).get(self.resource)
        return (int(alloc) if alloc is not None else None, int(cap) if cap is not None else None)


class Validator:
    name = "validate"

    def __init__(
        self,
        agent: Actuator | None = None,
        capacity: GpuCapacity | None = None,
        workload: WorkloadHook | None = None,
        symptoms: Symptoms | None = None,
        poll_s: float = 5.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.agent = agent
        self.capacity = capacity
        self.workload = workload
        self.symptoms = symptoms
        self.poll_s = poll_s
        self.now = now
        self.sleep = sleep

    def supports(self, operation: str) -> bool:
        return operation == "run"

    def owns(self, node: str) -> bool:
        return False

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if step.operation != "run":
            raise PermanentError(f"validate has no operation {step.operation!r}")
        started = self.now()
        end = started + timedelta(seconds=ctx.remaining_s())
        checks: dict[str, str] = {}
        p = step.params
        try:
            if p.get("dcgm_level"):
                checks["dcgm_diag"] = self._diag(int(p["dcgm_level"]), ctx)
            if p.get("allocatable_gpus", True) and self.capacity is not None:
                checks["allocatable_gpus"] = self._allocatable(ctx, p.get("expected_gpus"))
            if p.get("test_workload"):
                checks["test_workload"] = self._workload(ctx)
            if p.get("quiet_s"):
                checks["quiet"] = self._quiet(ctx.node, started, float(p["quiet_s"]), end)
        except _Failed as failed:
            checks[failed.check] = f"FAILED: {failed.detail}"
            raise PermanentError(
                f"validation failed ({failed.check}): {failed.detail}; checks {checks}"
            ) from None
        summary = "; ".join(f"{k}: {v}" for k, v in checks.items()) or "no checks requested"
        return StepResult(
            f"validation passed - {summary}", changed=False, outputs={"checks": checks}, validation="passed"
        )

    def _diag(self, level: int, ctx: StepContext) -> str:
        if self.agent is None:
            raise _Failed("dcgm_diag", "no node agent to run dcgmi diag on")
        spec = StepSpec(
            name=f"{ctx.step}-dcgm-diag"[:64],
            actuator="node_agent",
            operation="dcgm_diag",
            mutating=False,
            timeout_s=max(1.0, ctx.remaining_s()),
            params={"level": level},
        )
        result = self.agent.execute(spec, replace(ctx, step=spec.name))
        if result.validation != "passed":
            raise _Failed("dcgm_diag", result.detail)
        return result.detail

    def _allocatable(self, ctx: StepContext, expected_param: Any) -> str:
        assert self.capacity is not None
        allocatable, expected = self.capacity.gpus(ctx.node)
        if expected_param is not None:
            expected = int(expected_param)
        if allocatable is None or expected is None:
            raise _Failed("allocatable_gpus", f"unknown (allocatable={allocatable}, expected={expected})")
        if allocatable < expected:
            raise _Failed("allocatable_gpus", f"{allocatable} of {expected} GPUs allocatable")
        return f"{allocatable}/{expected} GPUs allocatable"

    def _workload(self, ctx: StepContext) -> str:
        if self.workload is None:
            raise _Failed("test_workload", "requested by the playbook but no workload hook is configured")
        ok, detail = self.workload.run(ctx.node, ctx.gpu, ctx.remaining_s())
        if not ok:
            raise _Failed("test_workload", detail)
        return detail

    def _quiet(self, node: str, started: datetime, quiet_s: float, end: datetime) -> str:
        if self.symptoms is None:
            raise _Failed("quiet", "no symptom source to watch")
        if started + timedelta(seconds=quiet_s) > end:
            raise _Failed("quiet", f"the step's budget is shorter than the {quiet_s:.0f}s quiet window")
        while True:
            last = self.symptoms.last_symptom(node)
            if last is not None and last >= started:
                raise _Failed(
                    "quiet", f"symptom at {last.isoformat()} inside the {quiet_s:.0f}s quiet window"
                )
            waited = (self.now() - started).total_seconds()
            if waited >= quiet_s:
                return f"quiet for {waited:.0f}s"
            self.sleep(min(self.poll_s, quiet_s - waited))


class _Failed(Exception):
    def __init__(self, check: str, detail: str) -> None:
        super().__init__(detail)
        self.check = check
        self.detail = detail
