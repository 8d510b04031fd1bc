"""Workflow records (what a plan execution is, per node outcome, its events) in the API's sqlite
state file, so ``GET /workflows/{id}`` answers after a restart and an interrupted workflow can be
resumed with the very plan and approvers it started with. Step states stay in the engine's journal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
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
    """(actor, role) of each approval the engine checks."""


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
            rec = rec.model_copy(update=update)
            tx.execute(
                "UPDATE workflows SET status=?, body=? WHERE id=?", (rec.status, rec.model_dump_json(), wf_id)
            )

    def outcome(self, wf_id: str, node: str, outcome: dict[str, Any]) -> None:
        self._change(wf_id, outcome=(node, outcome))

    def finish(self, wf_id: str, status: str, at: datetime) -> None:
        self._change(wf_id, status=status, finished_at=at)

    def event(self, wf_id: str, event: dict[str, Any]) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO workflow_events (workflow_id, seq, body) SELECT ?, "
                "coalesce(max(seq), -1) + 1, ? FROM workflow_events WHERE workflow_id=?",
                (wf_id, orjson.dumps(event).decode(), wf_id),
            )

    def get(self, wf_id: str) -> tuple[WorkflowRecord, list[dict[str, Any]]] | None:
        found = self.db.rows("SELECT body FROM workflows WHERE id=?", (wf_id,))
        if not found:
            return None
        events = self.db.rows("SELECT body FROM workflow_events WHERE workflow_id=? ORDER BY seq", (wf_id,))
        return WorkflowRecord.model_validate_json(found[0][0]), [orjson.loads(e[0]) for e in events]

    def unfinished(self) -> list[WorkflowRecord]:
        """Workflows a previous API process left running (it stopped or crashed mid-way)."""
        rows = self.db.rows("SELECT body FROM workflows WHERE status='running' ORDER BY id")
        return [WorkflowRecord.model_validate_json(r[0]) for r in rows]

    def list(self, limit: int) -> list[WorkflowRecord]:
        """The newest ``limit`` workflows, newest first."""
        rows = self.db.rows(
            "SELECT body FROM workflows ORDER BY json_extract(body, '$.started_at') DESC, id LIMIT ?",
            (limit,),
        )
        return [WorkflowRecord.model_validate_json(r[0]) for r in rows]
