"""Executes an approved plan through the guard: the API submits each node's step, signed, and
follows what the guard decided and the actuator stage did, from the store. No actuator runs here.

``concurrency`` nodes' steps are in the guard's hands at a time. A step the guard holds for
capacity alone (another node of its rack, pool or SKU is out, or the pool's headroom) is waiting,
not failed: the guard releases it when a slot frees, and its capacity arithmetic is the only one.
The driver waits for that at most ``hold_timeout_s`` from the guard's held decision, then fails the
step saying what it waited for (the guard itself retires a held step after the policy's
``max_wait_s``; the driver's bound is longer). Once one node's step ends in
anything but success, no further step is submitted (a plan that is going wrong stops spreading) and
the nodes not yet submitted are ``skipped``. The workflow record (what was submitted, each node's
outcome) lives in the API's state file, so a restarted API carries on from it: a step submitted
again keeps its id, and the guard decides each id once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from actuators.playbooks import Catalog
from breakfix.api.metrics import WORKFLOWS
from breakfix.api.plan_steps import (
    FINAL,
    OPERATOR_KIND,
    current_decision,
    decision_ids,
    is_held,
    node_outcome,
    operator_steps,
)
from breakfix.api.plans import Plan
from breakfix.api.ports import Publisher, StateReader
from breakfix.api.workflows import RollbackPolicy, WorkflowBook, WorkflowRecord

log = logging.getLogger(__name__)


class PlanDriver:
    def __init__(
        self,
        reader: StateReader,
        publisher: Publisher,
        proposals_topic: str,
        now: Callable[[], datetime],
        catalog: Catalog,
        book: WorkflowBook | None = None,
        poll_s: float = 0.5,
        hold_timeout_s: float = 3 * 3600.0,
    ) -> None:
        """``catalog``: the playbooks, whose step order the workflow view shows steps in;
        ``hold_timeout_s``: how long a step the guard holds for capacity may wait."""
        self.reader, self.publisher, self.topic, self.now = reader, publisher, proposals_topic, now
        self.catalog = catalog
        self.hold_timeout_s = hold_timeout_s
        self.book = book or WorkflowBook()
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- submitting -------------------------------------------------------------------------------

    def start(
        self,
        plan: Plan,
        approvers: tuple[tuple[str, str], ...],
        requested_by: str,
        concurrency: int,
        rollback_policy: RollbackPolicy,
    ) -> str:
        """Record the workflow and submit its first steps (the caller answers with its id)."""
        rec = WorkflowRecord(
            id="wf-" + uuid.uuid4().hex[:16],
            plan_id=plan.id,
            concurrency=concurrency,
            rollback_policy=rollback_policy,
            started_at=self.now(),
            nodes={n.node: n.playbook for n in plan.nodes},
            plan=plan,
            approvers=list(approvers),
            requested_by=requested_by,
        )
        self.book.create(rec)
        WORKFLOWS.labels("started").inc()
        self.advance(rec.id)
        return rec.id

    def _submit(self, rec: WorkflowRecord, nodes: list[str]) -> None:
        """Publish the steps, then record them as submitted: a crash in between submits them again
        under the same ids, which the guard decides once."""
        steps = operator_steps(rec.plan, rec.id, rec.approvers, rec.requested_by, self.now(), nodes)
        headers = {"breakfix-kind": OPERATOR_KIND}
        for step in steps:
            self.publisher.publish_sealed(self.topic, step.node, step.model_dump(mode="json"), headers)
        self.book.submitted(rec.id, nodes)

    # --- following --------------------------------------------------------------------------------

    def _observe(self, rec: WorkflowRecord) -> dict[str, dict[str, Any]]:
        """Each submitted node's guard decision and results, from the store."""
        ids = {did: n for n in rec.submitted for did in decision_ids(rec.id, n)}
        if not ids:
            return {}
        decisions, results = self.reader.plan_runs(sorted(ids))
        seen: dict[str, dict[str, Any]] = {n: {"decision": None, "results": []} for n in rec.submitted}
        for node in rec.submitted:
            seen[node]["decision"] = current_decision(d for d in decisions if ids[d["id"]] == node)
        for r in results:
            of = ids.get(r["decision_id"])
            if of is not None:
                seen[of]["results"].append(r)
        return seen

    def advance(self, wf_id: str) -> None:
        """One step of a running workflow: record the outcomes the store now shows, submit the next
        nodes while there is room and nothing went wrong, and finish it when every node has ended."""
        with self._lock:
            rec = self.book.get(wf_id)
            if rec is None or rec.status != "running":
                return
            for node, seen in self._observe(rec).items():
                out = node_outcome(seen["decision"], seen["results"]) or self._gave_up(seen["decision"])
                if node not in rec.outcomes and out is not None and out["status"] in FINAL:
                    self.book.outcome(rec.id, node, out)
                    rec.outcomes[node] = out
            halted = any(o["status"] != "succeeded" for o in rec.outcomes.values())
            waiting = [n for n in rec.nodes if n not in rec.submitted]
            if halted:
                for node in waiting:
                    out = {"status": "skipped", "detail": "an earlier node did not succeed"}
                    self.book.outcome(rec.id, node, out)
                    rec.outcomes[node] = out
            else:
                open_steps = [n for n in rec.submitted if n not in rec.outcomes]
                room = max(rec.concurrency - len(open_steps), 0)
                if waiting[:room]:
                    self._submit(rec, waiting[:room])
            if len(rec.outcomes) == len(rec.nodes):
                ok = all(o["status"] == "succeeded" for o in rec.outcomes.values())
                final = "succeeded" if ok else "failed"
                self.book.finish(rec.id, final, self.now())
                WORKFLOWS.labels(final).inc()

    def _gave_up(self, decision: dict[str, Any] | None) -> dict[str, str] | None:
        """A step held for capacity longer than ``hold_timeout_s``: failed, saying what it waited for."""
        if not is_held(decision) or decision is None:
            return None
        held = decision["time"] if decision["time"].tzinfo else decision["time"].replace(tzinfo=UTC)
        waited = (self.now() - held).total_seconds()
        if waited <= self.hold_timeout_s:
            return None
        why = (decision.get("reasons") or ["waiting for capacity"])[0]
        return {
            "status": "failed",
            "detail": f"held by the guard for capacity {waited:.0f}s, past {self.hold_timeout_s:.0f}s: {why}",
        }

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            for rec in self.book.unfinished():
                try:
                    self.advance(rec.id)
                except Exception as err:  # the store or the broker briefly away: try again next round
                    log.warning("workflow %s not advanced: %s", rec.id, err)

    def run_in_background(self) -> None:
        """Follow every running workflow (a previous process's included) until :meth:`stop`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="plan-driver", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # --- reading ----------------------------------------------------------------------------------

    def get(self, wf_id: str) -> dict[str, Any] | None:
        """The workflow as the store shows it: each node's guard decision, step results and outcome."""
        rec = self.book.get(wf_id)
        if rec is None:
            return None
        observed = self._observe(rec)
        steps: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        decisions: dict[str, Any] = {}
        current = None
        for node in rec.nodes:
            seen = observed.get(node)
            if seen is None:
                continue
            d = seen["decision"]
            if d is not None:
                decisions[node] = {
                    "id": d["id"],
                    "executable": bool(d["executable"]),
                    "guard_failed": list(d.get("guard_failed") or []),
                    "reasons": list(d.get("reasons") or []),
                }
            fields = ("id", "time", "node", "step", "status", "detail")
            events += [{k: r[k] for k in fields} for r in seen["results"]]
            mine = self._in_playbook_order(
                rec.nodes[node], [r for r in seen["results"] if r["step"] not in ("workflow", "started")]
            )
            steps += [{k: r[k] for k in ("node", "step", "status", "detail")} for r in mine]
            if mine and d is not None and d["executable"] and node_outcome(d, seen["results"]) is None:
                current = f"{node}:{mine[-1]['step']}"  # the last step it reported, while it runs
        steps = _latest_per_step(steps)
        outcomes = dict(rec.outcomes)
        for node, seen in observed.items():
            if node not in outcomes:
                live = node_outcome(seen["decision"], seen["results"])
                d = seen["decision"]
                outcomes[node] = live or (
                    {"status": "waiting", "detail": (d.get("reasons") or [""])[0]}
                    if is_held(d)
                    else {"status": "running" if d is not None else "submitted", "detail": ""}
                )
        errors = [
            {"node": n, "status": o["status"], "detail": o["detail"]}
            for n, o in outcomes.items()
            if o["status"] not in ("succeeded", "running", "submitted", "waiting")
        ]
        count = {
            k: sum(1 for o in outcomes.values() if o["status"] == k)
            for k in ("succeeded", "escalated", "rejected", "paused", "skipped", "failed")
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
            "decisions": decisions,
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

    def _in_playbook_order(self, playbook: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Step results in the playbook's order (steps, then rollback), whatever their timestamps
        (a simulated fleet may stamp a run's results alike); a step it does not name goes last."""
        pb = self.catalog.playbooks.get(playbook)
        order = {spec.name: i for i, spec in enumerate([*pb.steps, *pb.rollback])} if pb else {}
        return sorted(rows, key=lambda r: order.get(r["step"], len(order)))


def _latest_per_step(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (node, step) in first-seen order, with its latest status (a resumed step reports
    again)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for s in steps:
        latest[(s["node"], s["step"])] = s
    return list(latest.values())
