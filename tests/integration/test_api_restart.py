"""Nothing is lost on restart: plans, approval grants (and whether they were used) and workflow
records live in the API's state file, so a second API over the same store and state directory
executes an approved plan once, refuses a replayed token, answers for earlier workflows, and
carries on a workflow the first process left running."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from breakfix.api.plans import Plan
from breakfix.api.statedb import StateDb
from breakfix.api.workflows import WorkflowBook, WorkflowRecord
from store.base import Store
from store.chdb_backend import open_chdb
from store.migrate import migrate
from streams.kafka.embedded_broker import EmbeddedBroker
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fixtures import api as fx

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(chdb_path: Path) -> Iterator[Store]:
    store = open_chdb(chdb_path, f"api_restart_{uuid.uuid4().hex[:8]}")
    migrate(store)
    fx.seed_fleet(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


def post(api: fx.ApiServer, path: str, role: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(api.url + path, headers=api.headers(role), json=body, timeout=30)


def get(api: fx.ApiServer, path: str) -> httpx.Response:
    return httpx.get(api.url + path, headers=api.headers("viewer"), timeout=30)


def plan(api: fx.ApiServer, node: str) -> dict[str, Any]:
    pool = "infer" if node.startswith("inf-") else "train"
    body = {"pool": pool, "failure_class": "node_os", "action": "reboot", "nodes": [node], "dry_run": False}
    r = post(api, "/repair-plans", "operator", body)
    assert r.status_code == 200, r.text
    return r.json()


def approve(api: fx.ApiServer, plan_id: str) -> str:
    r = post(api, f"/repair-plans/{plan_id}/approve", "approver", {})
    assert r.status_code == 200, r.text
    return str(r.json()["approval_token"])


def finished(api: fx.ApiServer, wf_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        wf = get(api, f"/workflows/{wf_id}").json()
        if wf["status"] != "running" or time.monotonic() > deadline:
            return dict(wf)
        time.sleep(0.1)


def test_plans_tokens_and_workflows_survive_a_restart(
    fleet: Store, tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    topics, clock = fx.new_topics(), fx.Clock()
    with KubeApiServer() as kube:
        fx.fleet_kube(kube)
        with fx.running_api(fleet, tansu.url, tmp_path, topics, kube, clock) as first:
            done = plan(first, "gpu-node-2")
            used = approve(first, done["id"])
            ran = post(first, f"/repair-plans/{done['id']}/execute", "operator", {"approval_token": used})
            assert ran.status_code == 200, ran.text
            wf_before = finished(first, ran.json()["workflow_id"])
            assert wf_before["status"] == "succeeded", wf_before["errors"]
            pending = plan(first, "gpu-node-3")
            token = approve(first, pending["id"])
            crashed = plan(first, "inf-node-1")
            approve(first, crashed["id"])
            crashed_plan = first.ctx.plans.get(crashed["id"])

        # The first process died right after starting a workflow: its record says running, no
        # step was submitted to the guard. (What the API writes before it submits the first step.)
        assert crashed_plan is not None
        left_running = interrupted_workflow(tmp_path / "api.db", crashed_plan)

        with fx.running_api(fleet, tansu.url, tmp_path, topics, kube, clock) as second:
            shown = get(second, f"/repair-plans/{pending['id']}")
            assert shown.status_code == 200 and shown.json()["status"] == "approved"
            assert shown.json()["content_hash"] == pending["content_hash"]

            execute = f"/repair-plans/{pending['id']}/execute"
            once = post(second, execute, "operator", {"approval_token": token})
            assert once.status_code == 200, once.text
            wf = finished(second, once.json()["workflow_id"])
            assert wf["status"] == "succeeded", wf["errors"]
            assert ("reboot", "reboot") in second.agent.calls
            replayed = post(second, execute, "operator", {"approval_token": token})
            assert replayed.status_code == 409 and "already executed" in replayed.json()["detail"]

            # A token spent before the restart stays spent (the grant itself, not only the plan).
            with pytest.raises(Exception, match="already used"):
                second.ctx.approvals.redeem(used, done["id"], done["content_hash"], clock())

            again = get(second, f"/workflows/{wf_before['id']}")
            assert again.status_code == 200
            body = again.json()
            assert (body["status"], body["plan_id"]) == ("succeeded", done["id"])
            assert body["steps"] == wf_before["steps"] and body["events"] == wf_before["events"]
            assert get(second, f"/repair-plans/{done['id']}").json()["status"] == "executed"

            resumed = finished(second, left_running)
            assert resumed["status"] == "succeeded", resumed["errors"]
            assert [s["step"] for s in resumed["steps"]] == ["cordon", "reboot", "uncordon"]
            assert not kube.node("inf-node-1")["spec"].get("unschedulable")


def interrupted_workflow(state_file: Path, plan: Plan) -> str:
    db = StateDb(state_file)
    try:
        rec = WorkflowRecord(
            id="wf-interrupted" + uuid.uuid4().hex[:6],
            plan_id=plan.id,
            concurrency=1,
            rollback_policy="on_failure",
            started_at=datetime.now(UTC),
            nodes={n.node: n.playbook for n in plan.nodes},
            plan=plan,
            approvers=[(a.actor, "approver") for a in plan.approvals],
        )
        WorkflowBook(db).create(rec)
        return rec.id
    finally:
        db.close()
