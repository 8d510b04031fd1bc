"""Where plans live while they are approved and executed: the API's sqlite state file
(:mod:`breakfix.api.statedb`), so a pending plan, its approvals and the workflow it started survive
an API restart."""

from __future__ import annotations

from collections.abc import Callable

from breakfix.api.plans import Plan
from breakfix.api.statedb import StateDb


class PlanStore:
    def __init__(self, db: StateDb | None = None) -> None:
        self.db = db or StateDb()

    def put(self, plan: Plan) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO plans (id, body) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET body=excluded.body",
                (plan.id, plan.model_dump_json()),
            )

    def get(self, plan_id: str) -> Plan | None:
        found = self.db.rows("SELECT body FROM plans WHERE id=?", (plan_id,))
        return Plan.model_validate_json(found[0][0]) if found else None

    def update(self, plan_id: str, change: Callable[[Plan], Plan]) -> Plan:
        """Apply ``change`` atomically (two approvals or two executions never interleave, also
        across API processes sharing the state file); an exception from ``change`` writes nothing."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT body FROM plans WHERE id=?", (plan_id,)).fetchone()
            if row is None:
                raise KeyError(plan_id)
            plan = change(Plan.model_validate_json(row[0]))
            tx.execute("UPDATE plans SET body=? WHERE id=?", (plan.model_dump_json(), plan_id))
            return plan

    def list(self, limit: int) -> list[Plan]:
        """The newest ``limit`` plans, newest first."""
        rows = self.db.rows(
            "SELECT body FROM plans ORDER BY json_extract(body, '$.created_at') DESC, id LIMIT ?", (limit,)
        )
        return [Plan.model_validate_json(r[0]) for r in rows]
