"""Control levers, NICo machine release and health overrides, tickets, and the audit trail, over
HTTP against the real broker (messages read back from Tansu) and the store (audit rows)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from policy.levers import Levers, apply
from schemas.control import ControlMessage
from schemas.decision import ActionKind, GuardCheck, Mode
from store.rows import COLUMNS, decision_row, model_rows
from tests.builders import inventory
from tests.fakes.workflow_doubles import xid79_decision
from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

pytestmark = pytest.mark.integration
api_server = fx.api_server  # the shared fixture, registered in this module


def call(
    api: ApiServer, method: str, path: str, role: str, body: Any = None, **params: Any
) -> httpx.Response:
    return httpx.request(
        method, api.url + path, headers=api.headers(role), json=body, params=params, timeout=30
    )


def read_topic(broker: str, topic: str, want: int, timeout_s: float = 15) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker, auto_offset_reset="earliest")
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + timeout_s
            while len(out) < want and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                out += [orjson.loads(m.value) for msgs in batch.values() for m in msgs if m.value]
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


def test_killswitch_is_published_and_mirrored(api_server: ApiServer) -> None:
    on = call(
        api_server, "POST", "/killswitch", "operator", {"on": True, "pool": "infer", "reason": "bad driver"}
    )
    assert on.status_code == 200 and on.json()["key"] == "killswitch:pool:infer"
    assert call(api_server, "GET", "/killswitch", "viewer").json() == {
        "global": False,
        "pools": {"infer": True},
    }
    off = call(
        api_server, "POST", "/killswitch", "operator", {"on": False, "pool": "infer", "reason": "fixed"}
    )
    assert off.status_code == 200
    msgs = read_topic(api_server.broker, api_server.topics.control, 2)
    assert [(m["kind"], m["scope"], m["value"], m["actor"]) for m in msgs[:2]] == [
        ("killswitch", "pool:infer", {"on": True}, "operator-user"),
        ("killswitch", "pool:infer", {"on": False}, "operator-user"),
    ]
    missing_reason = call(api_server, "POST", "/killswitch", "operator", {"on": True})
    assert missing_reason.status_code == 422 and "reason" in missing_reason.json()["detail"]


def test_modes_approvals_and_breaker(api_server: ApiServer) -> None:
    ok = call(
        api_server,
        "POST",
        "/modes",
        "operator",
        {"failure_class": "gpu_memory", "mode": "auto", "reason": "precise"},
    )
    assert ok.status_code == 200 and ok.json()["scope"] == "class:gpu_memory"
    refused = call(
        api_server, "POST", "/modes", "operator", {"failure_class": "node_os", "mode": "auto", "reason": "x"}
    )
    assert refused.status_code == 422 and "auto_allowed" in refused.json()["detail"]
    bad = call(
        api_server, "POST", "/modes", "operator", {"failure_class": "node_os", "mode": "yolo", "reason": "x"}
    )
    assert bad.status_code == 422
    reset = call(
        api_server,
        "POST",
        "/breaker/reset",
        "operator",
        {"resolution": "discard_backlog", "reason": "storm over"},
    )
    assert reset.status_code == 200 and reset.json()["value"]["backlog"] == "discard"
    assert (
        call(
            api_server, "POST", "/breaker/reset", "operator", {"resolution": "later", "reason": "x"}
        ).status_code
        == 422
    )


def test_tenant_release_with_issue_takes_machine_out_at_once(api_server: ApiServer) -> None:
    body = {
        "id": "instance-12345",
        "machine_id": "gpu-node-2",
        "issue": {
            "category": "HARDWARE",
            "summary": "Memory errors during training",
            "details": "ECC on DIMM 2",
        },
    }
    r = call(api_server, "POST", "/api/v1/instances/release", "operator", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["applied"] == ["tenant-reported-issue", "repair-request"] and not out["machine"]["available"]
    events = read_topic(api_server.broker, api_server.topics.events, 1)
    report = next(e for e in events if e["id"] == out["events"][0])
    assert report["type"] == "tenant.report" and report["node"] == "gpu-node-2"
    assert report["data"]["instance_id"] == "instance-12345" and report["data"]["category"] == "HARDWARE"
    # Q4: the repair tenant releases it Completed: both overrides go, the machine is available again.
    done = call(
        api_server,
        "POST",
        "/api/v1/instances/release",
        "repair-tenant",
        {"instance_id": "repair-1", "machine_id": "gpu-node-2", "repair_status": "Completed"},
    )
    assert done.status_code == 200 and done.json()["machine"]["available"] is True
    assert sorted(done.json()["removed"]) == ["repair-request", "tenant-reported-issue"]


def test_repair_release_without_status_is_a_failed_repair(api_server: ApiServer) -> None:
    issue = {"category": "PERFORMANCE", "summary": "thermal throttling"}
    call(
        api_server,
        "POST",
        "/api/v1/instances/release",
        "operator",
        {"instance_id": "inf-node-1", "issue": issue},
    )
    r = call(api_server, "POST", "/api/v1/instances/release", "repair-tenant", {"instance_id": "inf-node-1"})
    assert r.status_code == 200
    assert r.json()["removed"] == ["repair-request"] and not r.json()["machine"]["available"]
    assert any("failed repair" in n for n in r.json()["notes"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"instance_id": "ghost-9"}, 404),
        ({"instance_id": "gpu-node-4", "issue": {"category": "COSMIC", "summary": "x"}}, 422),
        ({"instance_id": "gpu-node-4", "issue": {"category": "OTHER"}}, 422),
        ({"issue": {"category": "OTHER", "summary": "x"}}, 422),
        ({"instance_id": "../etc/passwd"}, 422),
    ],
)
def test_release_input_errors(api_server: ApiServer, body: dict[str, Any], status: int) -> None:
    r = call(api_server, "POST", "/api/v1/instances/release", "operator", body)
    assert r.status_code == status and r.json()["detail"]


def test_health_overrides_by_hand(api_server: ApiServer) -> None:
    base = "/api/v1/machines/inf-node-2/health-overrides"
    added = call(api_server, "POST", base, "operator", {"template": "OutForRepair", "message": "needs RMA"})
    assert added.status_code == 200 and added.json()["applied"] == ["out-for-repair"]
    shown = call(api_server, "GET", base, "repair-tenant").json()
    assert (
        shown["overrides"]["out-for-repair"]["source"] == "operator:operator-user" and not shown["available"]
    )
    assert call(api_server, "GET", "/api/v1/machines/inf-node-2", "viewer").json()["available"] is False
    assert (
        call(api_server, "POST", base, "operator", {"template": "Reboot", "message": "x"}).status_code == 422
    )
    assert call(api_server, "DELETE", f"{base}/not-a-kind", "operator").status_code == 422
    assert call(api_server, "DELETE", f"{base}/repair-request", "operator").status_code == 404
    removed = call(api_server, "DELETE", f"{base}/out-for-repair", "operator")
    assert removed.status_code == 200 and removed.json()["machine"]["available"] is True
    assert call(api_server, "GET", "/api/v1/machines/ghost-9", "viewer").status_code == 404


def test_tickets_agents_file_humans_close(api_server: ApiServer) -> None:
    made = call(
        api_server,
        "POST",
        "/tickets",
        "agent",
        {"node": "gpu-node-4", "summary": "NCCL timeouts", "details": "x"},
    )
    assert made.status_code == 200 and made.json()["created"] is True
    key = made.json()["ticket"]["key"]
    assert [t["key"] for t in call(api_server, "GET", "/tickets", "viewer", node="gpu-node-4").json()] == [
        key
    ]
    assert call(api_server, "GET", f"/tickets/{key}", "agent").json()["node"] == "gpu-node-4"
    agent_close = call(api_server, "POST", f"/tickets/{key}/close", "agent", {"resolution": "fixed"})
    assert agent_close.status_code == 403 and "human" in agent_close.json()["detail"]
    closed = call(api_server, "POST", f"/tickets/{key}/close", "operator", {"resolution": "cable reseated"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert call(api_server, "GET", "/tickets/BF-999", "viewer").status_code == 404
    other = call(api_server, "POST", "/tickets", "agent", {"node": "gpu-node-2", "summary": "ECC"}).json()
    newest = other["ticket"]["key"]
    # Without a node: the most recent tickets, open or closed, newest first, bounded by limit.
    recent = call(api_server, "GET", "/tickets", "agent").json()
    assert [(t["key"], t["status"]) for t in recent[:2]] == [(newest, "open"), (key, "closed")]
    assert [t["key"] for t in call(api_server, "GET", "/tickets", "viewer", limit=1).json()] == [newest]
    for bad in ({"limit": 0}, {"limit": 1001}, {"node": ""}):
        assert call(api_server, "GET", "/tickets", "viewer", **bad).status_code == 422, bad


def test_every_call_allowed_or_refused_is_audited_with_its_cli_line(api_server: ApiServer) -> None:
    call(api_server, "GET", "/nodes", "agent", pool="train")
    call(api_server, "POST", "/killswitch", "agent", {"on": True, "reason": "agent tries"})
    httpx.get(api_server.url + "/nodes", headers={"Authorization": "Bearer stolen"})
    rows = call(api_server, "GET", "/audit", "viewer", actor="agent-user", limit=50).json()
    by_action = {(r["action"], r["allowed"]): r for r in rows}
    listed = by_action[("nodes.list", True)]
    assert listed["initiator"] == "agent" and listed["role"] == "agent" and listed["status"] == 200
    assert listed["params"]["cli"] == "breakfix nodes --pool train"
    refused = by_action[("killswitch.set", False)]
    assert refused["status"] == 403 and "killswitch.set" in refused["detail"]
    assert refused["params"]["cli"] == "breakfix killswitch on --reason 'agent tries'"
    assert len(refused["params"]["body_sha256"]) == 64
    call(api_server, "POST", "/repair-plans", "agent", {"pool": "train"})  # 422: no failure_class
    rows = call(api_server, "GET", "/audit", "viewer", actor="agent-user", limit=50).json()
    bad = next(r for r in rows if r["action"] == "plans.create")
    assert bad["status"] == 422 and not bad["allowed"] and "failure_class" in bad["detail"]
    anon = call(api_server, "GET", "/audit", "viewer", actor="anonymous").json()
    assert any(r["action"] == "anonymous.refused" for r in anon)  # one summary line per minute
    # The same records reach the audit topic.
    topic = read_topic(api_server.broker, api_server.topics.audit, 3)
    assert {r["id"] for r in rows} & {r["id"] for r in topic}


def _held(store: Any, decision_id: str, node: str, action: ActionKind, guard_failed: bool = True) -> None:
    """A decision the guard held for a person's approval (or, ``guard_failed=False``, an executable one)."""
    check = GuardCheck(name="approval", passed=not guard_failed, figures={"required": True})
    d = xid79_decision(node=node, decision_id=decision_id, action=action, executable=not guard_failed,
                       mode=Mode.RECOMMEND, guard=[check])  # fmt: skip
    store.insert("decisions", COLUMNS["decisions"], [decision_row(d)])


def test_a_decision_approval_is_bound_to_its_decision_class_and_action_and_expires(
    api_server: ApiServer,
) -> None:
    """Approvals bound to what they approve, single use, expiring (default 30 min)."""
    _held(api_server.store, "dec-held-1", "gpu-node-2", ActionKind.REBOOT)
    body = {"decision_id": "dec-held-1", "reason": "checked the node"}
    ok = call(api_server, "POST", "/approvals", "approver", body)
    assert ok.status_code == 200, ok.text
    granted = ok.json()
    assert granted["scope"] == "decision:dec-held-1"  # one decision: it runs at most once
    value = granted["value"]
    assert (value["node"], value["failure_class"]) == ("gpu-node-2", "gpu_hardware")
    assert value["action"] == "reboot"
    ttl = api_server.ctx.approvals.ttl  # the fixture's; `breakfix serve --approval-ttl` defaults to 30 min
    left = datetime.fromisoformat(value["expires_at"]) - api_server.ctx.now()
    assert ttl - timedelta(seconds=5) < left <= ttl

    # what the approver names must be what the decision does
    wrong = call(api_server, "POST", "/approvals", "approver", {**body, "action": "gpu_reset"})
    assert wrong.status_code == 409 and "covers only what it names" in wrong.json()["detail"]
    unknown = call(api_server, "POST", "/approvals", "approver", {**body, "decision_id": "dec-nope"})
    assert unknown.status_code == 404 and "breakfix decisions" in unknown.json()["detail"]
    _held(api_server.store, "dec-free-1", "gpu-node-4", ActionKind.GPU_RESET, guard_failed=False)
    free = call(api_server, "POST", "/approvals", "approver", {**body, "decision_id": "dec-free-1"})
    assert free.status_code == 409 and "already executable" in free.json()["detail"]
    node_wide = {"node": "gpu-node-2", "failure_class": "gpu_hardware", "action": "reboot", "reason": "x"}
    node_wide = call(api_server, "POST", "/approvals", "approver", node_wide)
    assert node_wide.status_code == 422  # no approval without the decision it approves

    # the lever model (guard and actuator stage) honours the binding and the expiry
    levers = Levers()
    apply(levers, ControlMessage.model_validate({**granted, "time": datetime.now(UTC), "kind": "approval",
                                                 "actor": "approver-user", "role": "approver"}))  # fmt: skip
    now = api_server.ctx.now().timestamp()
    assert levers.approvals_for("gpu-node-2", "dec-held-1", "gpu_hardware", "reboot", now)
    assert not levers.approvals_for("gpu-node-2", "dec-other", "gpu_hardware", "reboot", now)
    assert not levers.approvals_for("gpu-node-2", "dec-held-1", "gpu_hardware", "reimage", now)
    later = datetime.fromisoformat(value["expires_at"]).timestamp() + 1
    assert not levers.approvals_for("gpu-node-2", "dec-held-1", "gpu_hardware", "reboot", later)


def test_machine_show_is_consistent_with_the_node_state(api_server: ApiServer) -> None:
    """A node the pipeline quarantined is not 'available' even with no override on its machine."""
    held = call(api_server, "GET", "/api/v1/machines/gpu-node-1", "viewer").json()  # Quarantined, Xid 79
    assert held["overrides"] == {} and held["available"] is False
    assert held["node_state"] == "Quarantined"
    assert held["unavailable_because"] == ["node state Quarantined (gpu_hardware)"]
    for table, row in model_rows(inventory("inf-node-9", rack="r9", pool="infer", sku="H100")):
        api_server.store.insert(table, COLUMNS[table], [row])
    free = call(api_server, "GET", "/api/v1/machines/inf-node-9", "viewer").json()  # Healthy, untouched
    assert free["available"] is True and free["unavailable_because"] == []


def test_a_second_ticket_for_a_node_keeps_the_agents_text(api_server: ApiServer) -> None:
    """One open ticket per node: a second filing becomes a comment, and the answer shows it was kept."""
    body = {"node": "inf-node-2", "summary": "XID 79 on GPU 2", "details": "first look"}
    first = call(api_server, "POST", "/tickets", "agent", body).json()
    again = {"node": "inf-node-2", "summary": "GPU 2 fell off the bus again", "details": "after reboot"}
    second = call(api_server, "POST", "/tickets", "agent", again).json()
    assert second["created"] is False and second["ticket"]["key"] == first["ticket"]["key"]
    assert second["appended"] == {"summary": again["summary"], "details": again["details"]}
    assert "added to it as a comment" in second["note"]
    assert any(again["summary"] in c["body"] for c in second["ticket"]["comments"])
