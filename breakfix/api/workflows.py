"""Workflow records (what a plan execution is, which nodes' steps were submitted to the guard, each
node's outcome) in the API's sqlite state file, so ``GET /workflows/{id}`` answers after a restart
and a restarted API carries on submitting with the very plan and approvers it started with. What the
guard decided and the actuator stage did is read from the store (:mod:`breakfix.api.plan_driver`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from breakfix.api.plans import Plan
from breakfix.api.statedb import StateDb

RollbackPolicy = Literal["on_failure", "none"]


class WorkflowRecord(BaseModel):
    id: str
    plan_id: str
    concurrency: int
    rollback_policy: RollbackPolicy
    started_at: datetime
    nodes: dict[str, str]
    """node -> playbook name."""
    status: str = "running"
    finished_at: datetime | None = None
    outcomes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    plan: Plan
    """The plan as executed (a resumed workflow runs exactly this)."""
    approvers: list[tuple[str, str]] = Field(default_factory=list)
    """(actor, role) of each approval the API verified; the guard's decision carries them to the
    actuator stage, whose workflow engine checks the playbook's approval rule against them."""
    requested_by: str = ""
    """Who executed the plan (named in each step the guard decides)."""
    submitted: list[str] = Field(default_factory=list)
    """Nodes whose step was sent to the guard, in order."""


class WorkflowBook:
    def __init__(self, db: StateDb | None = None) -> None:
        self.db = db or StateDb()

    def create(self, rec: WorkflowRecord) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO workflows (id, status, body) VALUES (?, ?, ?)",
                (rec.id, rec.status, rec.model_dump_json()),
            )

    def _change(self, wf_id: str, **update: Any) -> None:
        with self.db.transaction() as tx:
            row = tx.execute("SELECT body FROM workflows WHERE id=?", (wf_id,)).fetchone()
            if row is None:
                return
            rec = WorkflowRecord.model_validate_json(row[0])
            if "outcome" in update:
                node, outcome = update.pop("outcome")
                update["outcomes"] = {**rec.outcomes, node: outcome}
            if "submit" in update:
                update["submitted"] = [
                    *rec.submitted,
                    *(n for n in update.pop("submit") if n not in rec.submitted),
                ]
            rec = rec.model_copy(update=update)
            tx.execute(
                "UPDATE workflows SET status=?, body=? WHERE id=?", (rec.status, rec.model_dump_json(), wf_id)
            )

    def outcome(self, wf_id: str, node: str, outcome: dict[str, Any]) -> None:
        self._change(wf_id, outcome=(node, outcome))

    def submitted(self, wf_id: str, nodes: list[str]) -> None:
        self._change(wf_id, submit=nodes)

    def finish(self, wf_id: str, status: str, at: datetime) -> None:
        self._change(wf_id, status=status, finished_at=at)

    def get(self, wf_id: str) -> WorkflowRecord | None:
        found = self.db.rows("SELECT body FROM workflows WHERE id=?", (wf_id,))
        return WorkflowRecord.model_validate_json(found[0][0]) if found else None

    def unfinished(self) -> list[WorkflowRecord]:
        """Workflows still running (a previous API process's included)."""
        rows = self.db.rows("SELECT body FROM workflows WHERE status='running' ORDER BY id")
        return [WorkflowRecord.model_validate_json(r[0]) for r in rows]

    def list(self, limit: int) -> list[WorkflowRecord]:
        """The newest ``limit`` workflows, newest first."""
        rows = self.db.rows(
            "SELECT body FROM workflows ORDER BY json_extract(body, '$.started_at') DESC, id LIMIT ?",
            (limit,),
        )
        return [WorkflowRecord.model_validate_json(r[0]) for r in rows]
