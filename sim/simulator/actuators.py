"""Simulated actuators: turn decisions into ``action.result`` events, so offline replay closes the loop.

Semantics (what ``breakfix replay --offline`` can rely on):

The simulated world is the one the demo and ``breakfix run --role actuators --simulate`` act on
(:mod:`actuators.simulated`): the same operation durations, repair strengths and rule for when a
fault is cleared. Replay answers whole decisions instead of running playbook steps.

* Which decisions act: those with ``executable=True``; and, when built with
  ``follow_recommendations=True``, those in ``recommend`` mode too, as if an operator carried them out
  ``operator_delay_s`` later. Shadow-mode and stale decisions never act. Only the actions in
  ``OPERATION`` act (gpu_reset, reboot, drain, reimage, rma, validate); tickets, incidents,
  rollbacks and returns to service produce no result event here.
* When: one ``action.result`` per acting decision at decision time (+ operator delay) + its
  operation's simulated duration, id ``act-<decision id>``, so a repeated decision yields the same event. A
  repair (every action but validate) first reports ``in_progress`` when it starts (id
  ``act-<decision id>:started``), as the workflow engine does before its first mutating step, so the
  node passes through Repairing in replay exactly as in streaming.
* Whether it works: an action fails (``status="failed"``) with ``failure_probability``, drawn from a
  hash of ``(seed, decision id)``: deterministic, independent of call order, no global RNG.
* Validation (``action="validate"``): without labels every GPU validates clean. With labels, the
  validation fails while a true fault (label ``truth="fault"``) on that node (and GPU) is still active
  and not cleared (:func:`actuators.simulated.still_broken`): a transient fault clears with any
  successful repair after it started; a persistent one needs a successful repair at least as strong
  as the label's ``repair`` (gpu_reset < reboot < reimage < rma; a drain repairs nothing). So a GPU
  that fell off the bus and was only reset fails validation; after a reboot it passes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from actuators.simulated import DURATIONS_S, REPAIR_STRENGTH, Repair, SimFault, still_broken
from schemas.decision import Decision, Mode
from sim.simulator.clock import rfc3339
from sim.simulator.labels import Label, read_labels
from sim.simulator.rand import unit

OPERATION: dict[str, str] = {
    "gpu_reset": "gpu_reset",
    "reboot": "reboot",
    "drain": "drain",
    "reimage": "reimage",
    "rma": "rma",
    "validate": "run",
}
"""The simulated operation whose duration answers each acting decision's action."""


def faults_from_labels(labels: Iterable[Label]) -> list[SimFault]:
    """The simulator's ground-truth labels that are real faults, as the simulated world's faults."""
    return [
        SimFault(
            id=label.id,
            node=label.node,
            start=label.start.timestamp(),
            end=label.end.timestamp() if label.end else None,
            gpu=label.gpu,
            repair=label.repair,
            persistent=label.persistent,
        )
        for label in labels
        if label.truth == "fault"
    ]


class SimulatedActuators:
    def __init__(
        self,
        seed: int = 0,
        labels: Iterable[Label] | None = None,
        *,
        failure_probability: float = 0.02,
        follow_recommendations: bool = False,
        operator_delay_s: float = 1800.0,
        durations_s: dict[str, float] | None = None,
        source: str = "sim-actuator",
    ) -> None:
        if not 0.0 <= failure_probability <= 1.0:
            raise ValueError("failure_probability lies in [0, 1]")
        self.seed = seed
        self.failure_probability = failure_probability
        self.follow_recommendations = follow_recommendations
        self.operator_delay_s = operator_delay_s
        self.durations_s = {a: DURATIONS_S[op] for a, op in OPERATION.items()} | (durations_s or {})
        """Seconds each acting action takes (``durations_s`` overrides the simulated world's)."""
        self.source = source
        self._faults: dict[str, list[SimFault]] = defaultdict(list)
        for fault in faults_from_labels(labels or ()):
            self._faults[fault.node].append(fault)
        self._repairs: dict[str, dict[str, Repair]] = defaultdict(dict)

    @classmethod
    def from_labels(cls, path: str | Path, seed: int = 0, **options: Any) -> SimulatedActuators:
        """Actuators that validate against the labels file ``breakfix simulate --labels`` wrote."""
        return cls(seed, list(read_labels(path)), **options)

    def acts_on(self, d: Decision) -> bool:
        if d.stale or d.mode is Mode.SHADOW or d.action.value not in self.durations_s:
            return False
        return d.executable or (self.follow_recommendations and d.mode is Mode.RECOMMEND)

    def on_decision(self, decision: Decision) -> list[dict[str, Any]]:
        """The result events this decision causes (empty when it does not act)."""
        if not self.acts_on(decision):
            return []
        action = decision.action.value
        delay = 0.0 if decision.executable else self.operator_delay_s
        done = decision.time.timestamp() + delay + self.durations_s[action]
        failed = unit(self.seed, decision.id, "fail") < self.failure_probability
        data: dict[str, Any] = {
            "decision_id": decision.id,
            "action": action,
            "step": "validate" if action == "validate" else "execute",
            "status": "failed" if failed else "succeeded",
        }
        if decision.gpu is not None:
            data["gpu"] = decision.gpu
        if failed:
            data["detail"] = f"simulated {action} failure"
        elif action == "validate":
            broken = self.still_broken(decision.node, decision.gpu, done)
            data["validation"] = "failed" if broken else "passed"
            data["detail"] = f"fault {broken.id} not cleared" if broken else "burn-in clean"
        elif action in REPAIR_STRENGTH:
            self._repairs[decision.node][decision.id] = Repair(done, action, decision.gpu)
        out = [self._event(f"act-{decision.id}", decision.node, math.ceil(done), data)]
        if action != "validate":
            started = {**data, "status": "in_progress", "detail": f"simulated {action} started"}
            started.pop("validation", None)
            begin = math.ceil(decision.time.timestamp() + delay)
            out.append(self._event(f"act-{decision.id}:started", decision.node, begin, started))
        return out

    def _event(self, eid: str, node: str, t: int, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": eid,
            "type": "action.result",
            "source": self.source,
            "time": rfc3339(t),
            "node": node,
            "data": data,
        }

    def still_broken(self, node: str, gpu: int | None, t: float) -> SimFault | None:
        """The first true fault on the node (GPU) active at ``t`` that no repair so far has cleared."""
        return still_broken(self._faults.get(node, ()), self._repairs[node].values(), gpu, t)
