"""Repair plans over HTTP: plan, approve, execute, and every refusal on the way (dry run, requester
approving, missing/used/expired/foreign tokens, two-person rule, canary list, headroom, a fleet that
changed since planning). Executing submits each node's step to the guard, signed: the fixture's
pipeline (tests/fixtures/api.py) admits it through the guard's signature gate, decides it with the
real guard and runs the decision's playbook with the real workflow engine against the Kubernetes API
stand-in; the workflow the API shows is read back from the store."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from schemas.common import NodeState
from store.rows import COLUMNS, decision_row
from tests.fakes.workflow_doubles import xid79_decision
from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

pytestmark = pytest.mark.integration
api_server = fx.api_server  # the shared fixture, registered in this module


def post(api: ApiServer, path: str, role: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(api.url + path, headers=api.headers(role), json=body, timeout=30)


def plan(api: ApiServer, role: str = "operator", **body: Any) -> dict[str, Any]:
    r = post(api, "/repair-plans", role, {"pool": "train", "dry_run": False, **body})
    assert r.status_code == 200, r.text
    return r.json()


def approve(api: ApiServer, plan_id: str, role: str = "approver") -> httpx.Response:
    return post(api, f"/repair-plans/{plan_id}/approve", role, {"comment": "looks right"})


def execute(api: ApiServer, plan_id: str, role: str = "operator", **body: Any) -> httpx.Response:
    return post(api, f"/repair-plans/{plan_id}/execute", role, body)


def wait_workflow(api: ApiServer, wf_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        wf = httpx.get(f"{api.url}/workflows/{wf_id}", headers=api.headers("viewer"), timeout=30).json()
        if wf["status"] != "running" or time.monotonic() > deadline:
            return wf
        time.sleep(0.1)


def test_dry_run_plan_shows_nodes_playbooks_risk_and_capacity(api_server: ApiServer) -> None:
    p = plan(
        api_server,
        failure_class="gpu_hardware",
        action="gpu_reset",
        selector={"state": "Quarantined"},
        dry_run=True,
    )
    assert p["status"] == "dry_run" and len(p["content_hash"]) == 64
    assert [n["node"] for n in p["nodes"]] == ["gpu-node-1", "gpu-node-3"]
    n = p["nodes"][0]
    assert (n["playbook"], n["playbook_version"], n["action"], n["risk"]) == (
        "xid-ecc-conditional-drain-gpu-reset",
        "1.0",
        "gpu_reset",
        "medium",
    )
    assert n["gpu"] == 3  # the GPU the node's Xid decision named: a GPU reset resets that one
    # Quarantined nodes are already out: the plan removes no further GPUs from the pool.
    assert p["capacity"] == [
        {
            "pool": "train",
            "total_gpus": 32,
            "healthy_gpus": 16,
            "removed_gpus": 0,
            "min_healthy_gpus": 8,
            "headroom_ok": True,
        }
    ]
    assert p["approval"]["token_required"] is True and p["approval"]["kind"] == "none"
    assert (
        httpx.get(f"{api_server.url}/repair-plans/{p['id']}", headers=api_server.headers("viewer")).json()
        == p
    )
    assert approve(api_server, p["id"]).status_code == 409
    refused = execute(api_server, p["id"])
    assert refused.status_code == 409 and "dry run" in refused.json()["detail"]


def test_label_selector_reads_each_nodes_latest_inventory_labels(api_server: ApiServer) -> None:
    p = plan(api_server, failure_class="gpu_hardware", selector={"labels": {"fabric": "ib-r2"}}, dry_run=True)
    assert [n["node"] for n in p["nodes"]] == ["gpu-node-3"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"pool": "train", "failure_class": "cosmic_rays"}, "failure_class"),
        ({"pool": "train", "failure_class": "gpu_hardware", "nodes": ["nope-1"]}, "nope-1"),
        ({"pool": "train", "failure_class": "gpu_hardware", "selector": {"rack": "r7"}}, "matches"),
        (
            {"pool": "train", "failure_class": "gpu_hardware", "selector": {"labels": {"fabric": "ib-r9"}}},
            "matches",
        ),
        ({"pool": "empty", "failure_class": "gpu_hardware"}, "no nodes"),
        (
            {"pool": "train", "failure_class": "thermal_power", "action": "gpu_reset"},
            "no node-level playbook",
        ),
        ({"pool": "train", "failure_class": "gpu_hardware", "colour": "red"}, "colour"),
        ({"failure_class": "gpu_hardware"}, "pool"),
        ({"pool": "train", "failure_class": "gpu_hardware", "dry_run": "maybe"}, "dry_run"),
    ],
)
def test_bad_plan_requests_are_422_saying_what_to_fix(
    api_server: ApiServer, body: dict[str, Any], fragment: str
) -> None:
    r = post(api_server, "/repair-plans", "operator", body)
    assert r.status_code == 422 and fragment in r.json()["detail"], r.text


def test_plan_executes_against_kubernetes_with_an_approvers_token(api_server: ApiServer) -> None:
    p = plan(api_server, failure_class="gpu_hardware", action="gpu_reset", nodes=["gpu-node-1"])
    missing = execute(api_server, p["id"])
    assert missing.status_code == 403 and "0 of 1 approval" in missing.json()["detail"]
    own = approve(api_server, p["id"], role="admin")  # admin-user did not request it: allowed
    assert own.status_code == 200
    token = approve(api_server, p["id"]).json()
    assert token["plan_id"] == p["id"] and token["content_hash"] == p["content_hash"]
    again = approve(api_server, p["id"])
    assert again.status_code == 409 and "already approved" in again.json()["detail"]

    started = execute(api_server, p["id"], approval_token=token["approval_token"], concurrency=1)
    assert started.status_code == 200, started.text
    wf = wait_workflow(api_server, started.json()["workflow_id"])

    assert wf["status"] == "succeeded", wf["errors"]
    assert wf["plan_id"] == p["id"] and wf["errors"] == []
    # The guard decided the step (its record says the node is Quarantined: no slot taken, headroom
    # checked) and named the playbook and the approvers the API verified.
    decided = wf["decisions"]["gpu-node-1"]
    assert decided["id"] == f"d-{wf['id']}.gpu-node-1" and decided["executable"], decided
    [d] = [d for d in api_server.pipeline.decisions if d.id == decided["id"]]
    assert d.trigger == "operator_plan" and d.plan_id == p["id"] and d.gpu == 3
    assert sorted(a.actor for a in d.approvers) == sorted(
        [api_server.actors["admin"], api_server.actors["approver"]]
    )
    assert api_server.pipeline.letters == []  # the API signed it
    steps = [(s["node"], s["step"], s["status"]) for s in wf["steps"]]
    assert steps == [
        ("gpu-node-1", s, "succeeded") for s in ("cordon", "drain", "gpu-reset", "validate", "uncordon")
    ]
    assert wf["metrics"]["nodes_succeeded"] == 1 and wf["metrics"]["steps_succeeded"] == 5
    assert any(e["step"] == "workflow" and e["status"] == "succeeded" for e in wf["events"])
    # The real Kubernetes actuator evicted the trainer through the stand-in and returned the node.
    assert "default/trainer-0" not in api_server.kube.pods_on("gpu-node-1")
    assert not api_server.kube.node("gpu-node-1")["spec"].get("unschedulable")

    replay = execute(api_server, p["id"], approval_token=token["approval_token"])
    assert replay.status_code == 409 and "already executed" in replay.json()["detail"]
    shown = httpx.get(f"{api_server.url}/repair-plans/{p['id']}", headers=api_server.headers("viewer")).json()
    assert shown["status"] == "executed" and shown["workflow_id"] == wf["id"]


def test_tokens_are_bound_to_their_plan_and_expire(api_server: ApiServer) -> None:
    a = plan(api_server, failure_class="gpu_hardware", action="gpu_reset", nodes=["gpu-node-3"])
    b = plan(api_server, failure_class="gpu_hardware", action="gpu_reset", nodes=["gpu-node-3"])
    approve(api_server, b["id"])
    token_a = approve(api_server, a["id"]).json()["approval_token"]
    other = execute(api_server, b["id"], approval_token=token_a)
    assert other.status_code == 403 and a["id"] in other.json()["detail"]
    forged = execute(api_server, a["id"], approval_token="bfa_forged")
    assert forged.status_code == 403 and "unknown" in forged.json()["detail"]
    api_server.clock.advance(11 * 60)  # the fixture's token TTL is 10 minutes
    try:
        expired = execute(api_server, a["id"], approval_token=token_a)
    finally:
        api_server.clock.reset()
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]


def test_requester_cannot_approve_own_plan(api_server: ApiServer) -> None:
    p = plan(api_server, role="admin", failure_class="gpu_hardware", action="gpu_reset", nodes=["gpu-node-3"])
    r = approve(api_server, p["id"], role="admin")
    assert r.status_code == 403 and "other than the requester" in r.json()["detail"]


def test_two_person_rule_for_rma(api_server: ApiServer) -> None:
    p = plan(api_server, failure_class="gpu_hardware", action="rma", nodes=["gpu-node-3"])
    assert p["approval"]["two_person"] is True and p["nodes"][0]["risk"] == "high"
    first = approve(api_server, p["id"]).json()
    assert (first["approvals"], first["approvals_needed"]) == (1, 2)
    one = execute(api_server, p["id"], approval_token=first["approval_token"])
    assert one.status_code == 403 and "1 of 2 approval(s)" in one.json()["detail"]
    second = approve(api_server, p["id"], role="approver2").json()
    assert second["approvals"] == 2
    ok = execute(api_server, p["id"], approval_token=second["approval_token"])
    assert ok.status_code == 200, ok.text
    wf = wait_workflow(api_server, ok.json()["workflow_id"])
    assert [s["step"] for s in wf["steps"]][:3] == ["cordon", "drain", "out-for-repair"], wf
    machine = httpx.get(f"{api_server.url}/api/v1/machines/gpu-node-3", headers=api_server.headers("viewer"))
    assert "out-for-repair" in machine.json()["overrides"]


def test_agent_needs_a_token_unless_the_playbook_lists_the_node_as_canary(api_server: ApiServer) -> None:
    listed = plan(api_server, role="agent", failure_class="node_os", action="reboot", nodes=["gpu-node-4"])
    assert listed["nodes"][0]["playbook"] == "canary-reboot" and listed["approval"]["token_required"] is False
    # gpu-node-3 is not on the fixture's list (only gpu-node-4 is): a token is required, and the
    # refusal says which nodes the list does not cover.
    unlisted = plan(api_server, role="agent", failure_class="node_os", action="reboot", nodes=["gpu-node-3"])
    refused = execute(api_server, unlisted["id"], role="agent")
    assert refused.status_code == 403 and "not on the pre-approved canary list" in refused.json()["detail"]
    assert "gpu-node-3 not on the pre-approved canary list ['gpu-node-4']" in refused.json()["detail"]
    assert approve(api_server, unlisted["id"], role="agent").status_code == 403
    ran = execute(api_server, listed["id"], role="agent")
    assert ran.status_code == 200, ran.text
    wf = wait_workflow(api_server, ran.json()["workflow_id"])
    assert wf["status"] == "succeeded", wf["errors"]
    assert ("reboot", "reboot") in api_server.agent.calls


def test_the_guards_kill_switch_refuses_an_approved_plans_step(api_server: ApiServer) -> None:
    p = plan(api_server, pool="infer", failure_class="node_os", action="reboot", nodes=["inf-node-1"])
    token = approve(api_server, p["id"]).json()["approval_token"]
    switch = {"on": True, "reason": "freeze"}
    assert post(api_server, "/killswitch", "operator", switch).status_code == 200
    deadline = time.monotonic() + 15
    while not api_server.pipeline.state.levers.engaged("infer") and time.monotonic() < deadline:
        time.sleep(0.05)  # the guard has read the lever from the control topic
    try:
        started = execute(api_server, p["id"], approval_token=token)
        assert started.status_code == 200, started.text
        wf = wait_workflow(api_server, started.json()["workflow_id"])
    finally:
        post(api_server, "/killswitch", "operator", {"on": False, "reason": "thaw"})
    assert wf["status"] == "failed" and wf["nodes"]["inf-node-1"]["status"] == "rejected", wf
    assert "killswitch" in wf["errors"][0]["detail"]
    assert not wf["decisions"]["inf-node-1"]["executable"]
    assert not api_server.kube.node("inf-node-1")["spec"].get("unschedulable")


def test_plan_that_breaks_headroom_is_refused(api_server: ApiServer) -> None:
    p = plan(
        api_server, pool="infer", failure_class="node_os", action="reboot", nodes=["inf-node-1", "inf-node-2"]
    )
    assert p["notes"] == [f"inf-node-{i} is Healthy: included only because it was named" for i in (1, 2)]
    cap = p["capacity"][0]
    assert (cap["removed_gpus"], cap["min_healthy_gpus"], cap["headroom_ok"]) == (16, 8, False)
    assert {n["risk"] for n in p["nodes"]} == {"high"}
    r = execute(api_server, p["id"])
    assert r.status_code == 409 and "below its healthy minimum" in r.json()["detail"]


def test_plan_refused_when_the_fleet_changed_since_approval(api_server: ApiServer) -> None:
    p = plan(api_server, pool="infer", failure_class="node_os", action="reboot", nodes=["inf-node-1"])
    token = approve(api_server, p["id"]).json()["approval_token"]
    d = xid79_decision(node="inf-node-2", decision_id="dec-inf-2", from_state=NodeState.HEALTHY)
    api_server.store.insert("decisions", COLUMNS["decisions"], [decision_row(d)])
    r = execute(api_server, p["id"], approval_token=token)
    assert r.status_code == 409 and "changed" in r.json()["detail"]


def test_unknown_plan_and_workflow_are_404(api_server: ApiServer) -> None:
    h = api_server.headers("viewer")
    assert httpx.get(f"{api_server.url}/repair-plans/plan-nope", headers=h).status_code == 404
    assert httpx.get(f"{api_server.url}/workflows/wf-nope", headers=h).status_code == 404
    assert execute(api_server, "plan-nope").status_code == 404


def test_a_step_on_a_node_in_flight_is_refused_and_the_rest_of_the_plan_is_not_submitted(
    api_server: ApiServer,
) -> None:
    """The guard holds a run in flight on gpu-node-1 (an executable decision its results have not yet
    answered): the plan's step there is refused (``in_flight``), so the API never submits the next
    node's step (concurrency 1: a plan going wrong stops spreading) and marks it skipped."""
    state = api_server.pipeline.state
    state.running["gpu-node-1"] = "d-an-automatic-run"
    try:
        p = plan(
            api_server, failure_class="gpu_hardware", action="gpu_reset", nodes=["gpu-node-1", "gpu-node-3"]
        )
        token = approve(api_server, p["id"]).json()["approval_token"]
        started = execute(api_server, p["id"], approval_token=token, concurrency=1)
        assert started.status_code == 200, started.text
        wf = wait_workflow(api_server, started.json()["workflow_id"])
    finally:
        state.running.pop("gpu-node-1", None)
    assert wf["status"] == "failed", wf
    first, second = wf["nodes"]["gpu-node-1"], wf["nodes"]["gpu-node-3"]
    assert first["status"] == "rejected" and "in_flight" in first["detail"], first
    assert second["status"] == "skipped"
    assert not any(d.id == f"d-{wf['id']}.gpu-node-3" for d in api_server.pipeline.decisions)
