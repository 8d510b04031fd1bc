"""Runs an approved plan: one :class:`~actuators.workflow.WorkRequest` per planned node through the
real workflow engine, ``concurrency`` nodes at a time, in a background thread.

Each node's run is keyed ``<workflow id>.<node>`` (the engine's idempotency key and journal key), so
``GET /workflows/{id}`` reads step states straight from the engine's journal. After the first node
that does not succeed no further node is started (a plan that is going wrong stops spreading);
``rollback_policy`` ``none`` runs the playbooks without their rollback steps. The workflow record,
each node's outcome and each event are written to the API's state file as they happen
(:mod:`breakfix.api.workflows`), so a restarted API still answers for them and :meth:`PlanRunner.resume`
carries on what it left running.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from actuators.base import Actuator, Safety
from actuators.playbooks import Catalog
from actuators.workflow import Approver, Journal, WorkflowEngine, WorkRequest
from breakfix.api.metrics import WORKFLOWS
from breakfix.api.plans import Plan
from breakfix.api.ports import Publisher
from breakfix.api.workflows import RollbackPolicy, WorkflowBook, WorkflowRecord

log = logging.getLogger(__name__)


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
        book: WorkflowBook | None = None,
        unconfigured: dict[str, str] | None = None,
    ) -> None:
        """``unconfigured``: actuator kind -> the option that would register it, quoted when a plan
        needs a kind this server lacks (see :meth:`missing`)."""
        acts = list(actuators)
        self.catalog, self.journal, self.now = catalog, journal, now
        self.kinds = frozenset(a.name for a in acts)
        self.unconfigured = dict(unconfigured or {})
        self.publisher, self.events_topic = publisher, events_topic
        self.engines: dict[RollbackPolicy, WorkflowEngine] = {
            "on_failure": WorkflowEngine(catalog, acts, journal, safety, self._emit, now=now),
            "none": WorkflowEngine(_without_rollback(catalog), acts, journal, safety, self._emit, now=now),
        }
        self.book = book or WorkflowBook()
        self._threads: list[threading.Thread] = []

    def missing(self, playbooks: Iterable[str]) -> dict[str, str]:
        """Actuator kinds the named playbooks need that this server has not registered, each with
        the option that would register it: a plan is refused on this before any token is spent."""
        out: dict[str, str] = {}
        for name in playbooks:
            pb = self.catalog.get(name)
            for step in [*pb.steps, *pb.rollback]:
                if step.actuator not in self.kinds:
                    out[step.actuator] = self.unconfigured.get(step.actuator, "no option registers it here")
        return out

    # --- events -----------------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        wf_id = str(event["data"]["decision_id"]).split(".", 1)[0]
        self.book.event(wf_id, event)
        if self.publisher is not None:
            try:
                self.publisher.publish_sealed(self.events_topic, event.get("node") or "", event)
            except Exception as err:  # the journal is the engine's truth; the topic a copy
                log.warning("action result %s not published: %s", event.get("id"), err)

    # --- running ----------------------------------------------------------------------------------
    def start(
        self, plan: Plan, approvers: tuple[Approver, ...], concurrency: int, rollback_policy: RollbackPolicy
    ) -> str:
        rec = WorkflowRecord(
            id="wf-" + uuid.uuid4().hex[:16],
            plan_id=plan.id,
            concurrency=concurrency,
            rollback_policy=rollback_policy,
            started_at=self.now(),
            nodes={n.node: n.playbook for n in plan.nodes},
            plan=plan,
            approvers=[(a.actor, a.role) for a in approvers],
        )
        self.book.create(rec)
        WORKFLOWS.labels("started").inc()
        self._launch(rec)
        return rec.id

    def resume(self) -> list[str]:
        """Carry on the workflows a previous API process left running: nodes with an outcome keep
        it, the others run (the engine resumes each from its journal, never repeating a step that
        succeeded, and re-checks the kill switch before every mutating step)."""
        unfinished = self.book.unfinished()
        for rec in unfinished:
            log.warning("resuming workflow %s of plan %s after a restart", rec.id, rec.plan_id)
            self._launch(rec)
        return [rec.id for rec in unfinished]

    def _launch(self, rec: WorkflowRecord) -> None:
        thread = threading.Thread(target=self._run, args=(rec,), name=f"workflow:{rec.id}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, rec: WorkflowRecord) -> None:
        plan, engine = rec.plan, self.engines[rec.rollback_policy]
        approvers = tuple(Approver(actor, role) for actor, role in rec.approvers)
        outcomes = dict(rec.outcomes)
        halt = threading.Event()
        if any(o["status"] != "succeeded" for o in outcomes.values()):
            halt.set()
        cap = plan.capacity[0].headroom_ok if plan.capacity else None

        def one(n: Any) -> None:
            if n.node in outcomes:
                return
            if halt.is_set():
                out = {"status": "skipped", "detail": "an earlier node did not succeed"}
            else:
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
                    done = engine.run(req)
                    out = {"status": done.status, "detail": done.detail}
                except Exception as err:  # never let one node's crash hide the others' results
                    out = {"status": "error", "detail": f"{type(err).__name__}: {err}"}
            outcomes[n.node] = out
            self.book.outcome(rec.id, n.node, out)
            if out["status"] != "succeeded":
                halt.set()

        with ThreadPoolExecutor(max_workers=rec.concurrency, thread_name_prefix=rec.id) as pool:
            list(pool.map(one, plan.nodes))
        statuses = {o["status"] for o in outcomes.values()}
        final = "succeeded" if statuses == {"succeeded"} else "failed"
        self.book.finish(rec.id, final, self.now())
        WORKFLOWS.labels(final).inc()

    def wait(self, timeout_s: float = 30.0) -> None:
        """Join running workflows (shutdown and tests)."""
        for t in list(self._threads):
            t.join(timeout_s)

    # --- reading ----------------------------------------------------------------------------------
    def get(self, wf_id: str) -> dict[str, Any] | None:
        found = self.book.get(wf_id)
        if found is None:
            return None
        rec, events = found
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
                "duration_s": round(((rec.finished_at or self.now()) - rec.started_at).total_seconds(), 3),
            },
            "errors": errors,
        }
