"""Where plans live while they are approved and executed. In memory: a plan is short-lived (it
expires), and an API restart voiding pending approvals fails safe (nothing runs unapproved)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from breakfix.api.plans import Plan


class PlanStore:
    def __init__(self) -> None:
        self._plans: dict[str, Plan] = {}
        self._lock = threading.Lock()

    def put(self, plan: Plan) -> None:
        with self._lock:
            self._plans[plan.id] = plan

    def get(self, plan_id: str) -> Plan | None:
        with self._lock:
            return self._plans.get(plan_id)

    def update(self, plan_id: str, change: Callable[[Plan], Plan]) -> Plan:
        """Apply ``change`` atomically (so two approvals or two executions never interleave)."""
        with self._lock:
            plan = change(self._plans[plan_id])
            self._plans[plan_id] = plan
            return plan
