"""Runs an approved plan: one :class:`~actuators.workflow.WorkRequest` per planned node through the
real workflow engine, ``concurrency`` nodes at a time, in a background thread.

Each node's run is keyed ``<workflow id>.<node>`` (the engine's idempotency key and journal key), so
``GET /workflows/{id}`` reads step states straight from the engine's journal. After the first node
that does not succeed no further node is started (a plan that is going wrong stops spreading);
``rollback_policy`` ``none`` runs the playbooks without their rollback steps.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from actuators.base import Actuator, Safety
from actuators.playbooks import Catalog
from actuators.workflow import Approver, Journal, WorkflowEngine, WorkRequest
from breakfix.api.plans import Plan
from breakfix.api.ports import Publisher

log = logging.getLogger(__name__)
RollbackPolicy = Literal["on_failure", "none"]


@dataclass
class WorkflowRecord:
    id: str
    plan_id: str
    concurrency: int
    rollback_policy: RollbackPolicy
    started_at: datetime
    nodes: dict[str, str]
    """node -> playbook name."""
    status: str = "running"
    finished_at: datetime | None = None
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    started_mono: float = field(default_factory=time.monotonic)
    duration_s: float | None = None


def _without_rollback(catalog: Catalog) -> Catalog:
    return Catalog(p.model_copy(update={"rollback": []}) for p in catalog.playbooks.values())


class PlanRunner:
    def __init__(
        self,
        catalog: Catalog,
        actuators: Iterable[Actuator],
        journal: Journal,
        safety: Safety,
        publisher: Publisher | None,
        events_topic: str,
        now: Callable[[], datetime],
    ) -> None:
        acts = list(actuators)
        self.catalog, self.journal, self.now = catalog, journal, now
        self.publisher, self.events_topic = publisher, events_topic
        self.engines: dict[RollbackPolicy, WorkflowEngine] = {
            "on_failure": WorkflowEngine(catalog, acts, journal, safety, self._emit, now=now),
            "none": WorkflowEngine(_without_rollback(catalog), acts, journal, safety, self._emit, now=now),
        }
        self._records: dict[str, WorkflowRecord] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # --- events -----------------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        wf_id = str(event["data"]["decision_id"]).split(".", 1)[0]
        with self._lock:
            rec = self._records.get(wf_id)
            if rec is not None:
                rec.events.append(event)
        if self.publisher is not None:
            try:
                self.publisher.publish(self.events_topic, event.get("node") or "", orjson.dumps(event))
            except Exception as err:  # the journal is the engine's truth; the topic a copy
                log.warning("action result %s not published: %s", event.get("id"), err)

    # --- running ----------------------------------------------------------------------------------
    def start(
        self, plan: Plan, approvers: tuple[Approver, ...], concurrency: int, rollback_policy: RollbackPolicy
    ) -> str:
        wf_id = "wf-" + uuid.uuid4().hex[:16]
        rec = WorkflowRecord(
            wf_id, plan.id, concurrency, rollback_policy, self.now(), {n.node: n.playbook for n in plan.nodes}
        )
        with self._lock:
            self._records[wf_id] = rec
        thread = threading.Thread(
            target=self._run, args=(rec, plan, approvers), name=f"workflow:{wf_id}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return wf_id

    def _run(self, rec: WorkflowRecord, plan: Plan, approvers: tuple[Approver, ...]) -> None:
        engine = self.engines[rec.rollback_policy]
        halt = threading.Event()
        cap = plan.capacity[0].headroom_ok if plan.capacity else None

        def one(n: Any) -> None:
            if halt.is_set():
                rec.outcomes[n.node] = {"status": "skipped", "detail": "an earlier node did not succeed"}
                return
            req = WorkRequest(
                decision_id=f"{rec.id}.{n.node}",
                node=n.node,
                failure_class=plan.failure_class,
                action=n.action,
                from_state=n.state,
                gpu=n.gpu,
                pool=n.pool,
                playbook=n.playbook,
                approvers=approvers,
                reasons=(f"repair plan {plan.id}",),
                headroom_ok=cap,
                initiator="human",
            )
            try:
                out = engine.run(req)
                rec.outcomes[n.node] = {"status": out.status, "detail": out.detail}
            except Exception as err:  # never let one node's crash hide the others' results
                rec.outcomes[n.node] = {"status": "error", "detail": f"{type(err).__name__}: {err}"}
            if rec.outcomes[n.node]["status"] != "succeeded":
                halt.set()

        with ThreadPoolExecutor(max_workers=rec.concurrency, thread_name_prefix=rec.id) as pool:
            list(pool.map(one, plan.nodes))
        statuses = {o["status"] for o in rec.outcomes.values()}
        rec.status = "succeeded" if statuses == {"succeeded"} else "failed"
        rec.finished_at = self.now()
        rec.duration_s = round(time.monotonic() - rec.started_mono, 3)

    def wait(self, timeout_s: float = 30.0) -> None:
        """Join running workflows (shutdown and tests)."""
        for t in list(self._threads):
            t.join(timeout_s)

    # --- reading ----------------------------------------------------------------------------------
    def get(self, wf_id: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._records.get(wf_id)
            events = list(rec.events) if rec else []
        if rec is None:
            return None
        steps: list[dict[str, Any]] = []
        current = None
        for node, playbook in rec.nodes.items():
            pb = self.catalog.get(playbook)
            journal = self.journal.steps(f"{rec.id}.{node}")
            for spec in [*pb.steps, *pb.rollback]:
                s = journal.get(spec.name)
                if s is None:
                    continue
                steps.append(
                    {
                        "node": node,
                        "step": s.step,
                        "phase": s.phase,
                        "status": s.status,
                        "detail": s.detail,
                        "attempts": s.attempts,
                    }
                )
                if s.status == "started":
                    current = f"{node}:{s.step}"
        outcomes = dict(rec.outcomes)
        errors = [
            {"node": n, "status": o["status"], "detail": o["detail"]}
            for n, o in outcomes.items()
            if o["status"] != "succeeded"
        ]
        count = {
            k: sum(1 for o in outcomes.values() if o["status"] == k)
            for k in ("succeeded", "escalated", "rejected", "paused", "skipped", "error")
        }
        return {
            "id": rec.id,
            "plan_id": rec.plan_id,
            "status": rec.status,
            "current_step": current,
            "concurrency": rec.concurrency,
            "rollback_policy": rec.rollback_policy,
            "started_at": rec.started_at,
            "finished_at": rec.finished_at,
            "steps": steps,
            "events": events,
            "nodes": outcomes,
            "metrics": {
                "nodes_total": len(rec.nodes),
                **{f"nodes_{k}": v for k, v in count.items()},
                "steps_succeeded": sum(1 for s in steps if s["status"] == "succeeded"),
                "steps_failed": sum(1 for s in steps if s["status"] in ("failed", "timeout")),
                "duration_s": rec.duration_s
                if rec.duration_s is not None
                else round(time.monotonic() - rec.started_mono, 3),
            },
            "errors": errors,
        }
