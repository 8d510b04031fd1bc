"""The operator CLI driven as a user would, against the real API (``api_server``: uvicorn on a free
loopback port, chdb store, Tansu, the workflow engine on the Kubernetes API stand-in).

Each verb is run with the token of the role that may use it; ``--json`` output is parsed and checked
against what the API holds, and refusals must show the API's message plus the next step.
"""

from __future__ import annotations

import json
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from breakfix.cli.main import app
from schemas.audit import AuditRecord
from store.rows import COLUMNS, audit_row
from tests.fixtures import api as fx

api_server = fx.api_server
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli(api_server: fx.ApiServer) -> Any:
    runner = CliRunner()

    def run(role: str | None, *args: str) -> Result:
        env = {
            "BREAKFIX_API_URL": api_server.url,
            "BREAKFIX_API_TOKEN": api_server.tokens[role] if role else "",
        }
        return runner.invoke(app, list(args), env=env)

    return run


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_nodes_lists_the_fleet_with_filters(cli: Any) -> None:
    rows = ok_json(cli("viewer", "nodes", "--pool", "train", "--json"))
    assert {r["node"]: r["state"] for r in rows} == {
        "gpu-node-1": "Quarantined", "gpu-node-2": "Healthy",
        "gpu-node-3": "Quarantined", "gpu-node-4": "Healthy",
    }  # fmt: skip
    quarantined = ok_json(cli("viewer", "nodes", "--state", "Quarantined", "--json"))
    assert sorted(r["node"] for r in quarantined) == ["gpu-node-1", "gpu-node-3"]
    human = cli("viewer", "nodes", "--pool", "infer")
    assert human.exit_code == 0 and "inf-node-2" in human.stdout and "gpu-node-1" not in human.stdout


def test_nodes_show_their_inventory_labels(cli: Any) -> None:
    rows = ok_json(cli("viewer", "nodes", "--pool", "train", "--json"))
    assert {r["node"]: r["labels"] for r in rows}["gpu-node-3"] == {"fabric": "ib-r2"}
    wide = cli("viewer", "nodes", "--pool", "train", "--show-labels")
    assert wide.exit_code == 0 and "fabric=ib-r2" in wide.stdout, wide.output
    assert all(len(line) <= 80 for line in wide.stdout.splitlines())
    assert "fabric" not in cli("viewer", "nodes", "--pool", "train").stdout


def test_node_show_has_decisions(cli: Any) -> None:
    node = ok_json(cli("viewer", "node", "show", "gpu-node-1", "--json"))
    assert node["state"] == "Quarantined"
    assert [d["id"] for d in node["decisions"]] == ["dec-gpu-node-1"]
    human = cli("viewer", "node", "show", "gpu-node-1")
    assert "dec-gpu-node-1" in human.stdout and "gpu_hardware" in human.stdout


def test_unknown_node_is_a_404_with_a_hint(cli: Any) -> None:
    res = cli("viewer", "node", "show", "no-such-node")
    assert res.exit_code == 1
    assert "HTTP 404" in res.stderr and "breakfix nodes" in res.stderr


def test_plan_create_approve_execute_watch(cli: Any, api_server: fx.ApiServer) -> None:
    plan = ok_json(cli("operator", "plan", "create", "--pool", "train", "--failure-class", "gpu_hardware",
                       "--node", "gpu-node-1", "--execute-ready", "--json"))  # fmt: skip
    assert plan["dry_run"] is False and [n["node"] for n in plan["nodes"]] == ["gpu-node-1"]
    assert plan["nodes"][0]["playbook"] and plan["capacity"][0]["headroom_ok"] is True
    shown = ok_json(cli("viewer", "plan", "show", plan["id"], "--json"))
    assert shown["content_hash"] == plan["content_hash"]
    assert "capacity stays within" in cli("viewer", "plan", "show", plan["id"]).stdout

    refused = cli("operator", "plan", "execute", plan["id"])
    assert refused.exit_code == 1 and "HTTP 403" in refused.stderr
    assert "breakfix approve PLAN_ID" in refused.stderr

    approved = cli("approver", "approve", plan["id"], "--comment", "rack r1 drained tonight")
    assert approved.exit_code == 0, approved.output
    token = approved.stdout.strip()
    assert token and "\n" not in token  # stdout is the token alone, so $(breakfix approve ...) works

    # Only rollback on failure exists (the actuator stage runs the playbook with its rollback): the
    # CLI offers no choice the API would refuse.
    no_choice = cli("operator", "plan", "execute", plan["id"], "--token", token, "--rollback", "none")
    assert no_choice.exit_code == 2 and "--rollback" in no_choice.output
    started = cli("operator", "plan", "execute", plan["id"], "--token", token, "--concurrency", "1")
    assert started.exit_code == 0, started.output
    workflow_id = started.stdout.strip()
    assert workflow_id.startswith("wf-")
    watched = cli(
        "viewer", "workflow", "watch", workflow_id, "--interval", "0.05", "--timeout", "30", "--json"
    )
    wf = ok_json(watched)
    assert wf["status"] == "succeeded" and wf["plan_id"] == plan["id"]
    assert [s["step"] for s in wf["steps"]][-1] == "uncordon"
    assert "uncordon" in cli("viewer", "workflow", "show", workflow_id).stdout

    reused = cli("operator", "plan", "execute", plan["id"], "--token", token)
    assert reused.exit_code == 1 and "HTTP" in reused.stderr  # single use


def test_dry_run_plan_shows_impact(cli: Any) -> None:
    plan = ok_json(cli("agent", "plan", "create", "--pool", "train", "--class", "gpu_hardware",
                       "--node", "gpu-node-3", "--json"))  # fmt: skip
    assert plan["dry_run"] is True and plan["created_by"] == "agent-user"


def test_levers_need_a_reason_and_the_operator_role(cli: Any) -> None:
    assert ok_json(cli("viewer", "killswitch", "status", "--json"))["global"] is False
    on = ok_json(
        cli("operator", "killswitch", "on", "--pool", "infer", "--reason", "driver rollout", "--json")
    )
    assert on["scope"] == "pool:infer" and on["value"]["on"] is True
    off = cli("operator", "killswitch", "off", "--pool", "infer", "--reason", "rollout done")
    assert off.exit_code == 0 and "off for pool infer" in off.stdout
    no_reason = cli("operator", "killswitch", "on")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    viewer = cli("viewer", "killswitch", "on", "--reason", "x")
    assert viewer.exit_code == 1 and "HTTP 403" in viewer.stderr and "operator" in viewer.stderr

    mode = ok_json(cli("operator", "mode", "set", "gpu_memory", "recommend", "--reason", "clean", "--json"))
    assert mode["scope"] == "class:gpu_memory" and mode["value"]["mode"] == "recommend"
    assert cli("operator", "mode", "set", "gpu_memory", "yolo", "--reason", "x").exit_code == 2

    reset = ok_json(
        cli("operator", "breaker", "reset", "--discard-backlog", "--reason", "PDU fixed", "--json")
    )
    assert reset["value"]["resolution"] == "discard_backlog"
    both = cli("operator", "breaker", "reset", "--discard-backlog", "--resume", "--reason", "x")
    assert both.exit_code == 2 and "exactly one" in both.stderr


def test_machine_and_health_overrides(cli: Any) -> None:
    added = ok_json(cli("operator", "health-override", "add", "gpu-node-4", "--template", "OutForRepair",
                        "--message", "RMA 4411", "--json"))  # fmt: skip
    assert added["applied"] == ["out-for-repair"]
    listed = ok_json(cli("viewer", "health-override", "show", "gpu-node-4", "--json"))
    assert listed["overrides"]["out-for-repair"]["message"] == "RMA 4411"
    machine = cli("repair-tenant", "machine", "show", "gpu-node-4")
    assert machine.exit_code == 0 and "out-for-repair" in machine.stdout and "RMA 4411" in machine.stdout
    removed = ok_json(cli("operator", "health-override", "remove", "gpu-node-4", "--template", "OutForRepair",
                          "--json"))  # fmt: skip
    assert removed["removed"] == ["out-for-repair"]
    assert ok_json(cli("viewer", "machine", "show", "gpu-node-4", "--json"))["overrides"] == {}

    released = ok_json(cli("repair-tenant", "machine", "release", "gpu-node-4", "--category", "HARDWARE",
                           "--summary", "ECC errors on GPU 3", "--json"))  # fmt: skip
    assert released["events"]  # the tenant report went out as events
    bad = cli("repair-tenant", "machine", "release", "gpu-node-4", "--summary", "no category")
    assert bad.exit_code == 2 and "--category" in bad.stderr
    tenant = cli("repair-tenant", "nodes")
    assert tenant.exit_code == 1 and "HTTP 403" in tenant.stderr


def test_tickets_runbooks_decisions(cli: Any) -> None:
    created = ok_json(cli("agent", "ticket", "create", "gpu-node-2", "--summary", "Xid 79 twice", "--json"))
    key = created["ticket"]["key"]
    listed = ok_json(cli("viewer", "ticket", "list", "--node", "gpu-node-2", "--json"))
    recent = ok_json(cli("viewer", "ticket", "list", "--limit", "5", "--json"))
    assert key in [t["key"] for t in recent]
    assert key in [t["key"] for t in listed]
    names = [r["name"] for r in ok_json(cli("viewer", "runbooks", "--json"))]
    assert "canary-reboot" in names and "reboot" in names
    decisions = ok_json(cli("viewer", "decisions", "--node", "gpu-node-3", "--json"))
    assert [d["id"] for d in decisions] == ["dec-gpu-node-3"]


def test_missing_token_and_unreachable_server_say_what_to_do(cli: Any) -> None:
    res = cli(None, "nodes")
    assert res.exit_code == 1 and "HTTP 401" in res.stderr and "BREAKFIX_API_TOKEN" in res.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = cli("viewer", "nodes", "--server", f"http://127.0.0.1:{port}")
    assert res.exit_code == 1 and "cannot reach the API" in res.stderr and "breakfix serve" in res.stderr
    bad = cli("operator", "plan", "create", "--pool", "train", "--failure-class", "no_such_class", "--json")
    assert bad.exit_code == 1 and "HTTP 4" in bad.stderr


def test_plan_create_label_selector(cli: Any) -> None:
    # rack r2 (fabric ib-r2): gpu-node-3 stays Quarantined in this module (gpu-node-1, on r1, is
    # repaired by the execute test, and a plan without names never lists a Healthy node)
    plan = ok_json(cli("operator", "plan", "create", "--pool", "train",
                       "--failure-class", "gpu_hardware", "--label", "fabric=ib-r2", "--json"))  # fmt: skip
    assert [n["node"] for n in plan["nodes"]] == ["gpu-node-3"]
    none = cli("operator", "plan", "create", "--pool", "train", "--failure-class", "gpu_hardware",
               "--label", "fabric=ib-r2", "--label", "zone=z9")  # fmt: skip
    assert none.exit_code == 1 and "matches" in none.stderr
    bad = cli("operator", "plan", "create", "--pool", "train", "--failure-class", "gpu_hardware",
              "--label", "fabric")  # fmt: skip
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.stderr


def test_audit_list_and_replay_with_my_token(cli: Any, api_server: fx.ApiServer) -> None:
    created = ok_json(cli("agent", "plan", "create", "--pool", "train", "--failure-class", "gpu_hardware",
                          "--node", "gpu-node-3", "--json"))  # fmt: skip
    rows = ok_json(cli("viewer", "audit", "list", "--actor", "agent-user", "--json"))
    record = next(r for r in rows if r["action"] == "plans.create" and r["status"] == 200)
    assert record["initiator"] == "agent" and record["surface"] == "cli"
    assert "plan create" in record["params"]["cli"]
    assert cli("viewer", "audit", "--actor", "agent-user").exit_code == 0  # the form audit lines record

    replayed = ok_json(cli("operator", "audit", "replay", record["id"], "--json"))
    assert replayed["created_by"] == "operator-user" and replayed["id"] != created["id"]
    assert replayed["nodes"] == created["nodes"] and replayed["failure_class"] == "gpu_hardware"
    mine = ok_json(cli("viewer", "audit", "list", "--actor", "operator-user", "--limit", "5", "--json"))
    assert any(r["action"] == "plans.create" and r["initiator"] == "human" for r in mine)

    missing = cli("operator", "audit", "replay", "api-nope")
    assert missing.exit_code == 2 and "no audit record" in missing.stderr


def _audit_rows(api_server: fx.ApiServer) -> int:
    return int(api_server.store.query(f"SELECT count() FROM {api_server.store.database}.audit").rows[0][0])


def test_replaying_a_refused_sql_call_goes_through_the_api_under_my_token(
    cli: Any, api_server: fx.ApiServer
) -> None:
    """An agent's refused ``DELETE`` must stay refused when an operator replays it: the replay asks
    the API (which judges it again under the operator's role), never the raw store."""
    delete = "ALTER TABLE audit DELETE WHERE 1"
    refused = cli("agent", "sql", "--api", delete)
    assert refused.exit_code == 1 and "HTTP 422" in refused.stderr, refused.output
    rows = ok_json(cli("viewer", "audit", "list", "--actor", "agent-user", "--json"))
    record = next(r for r in rows if r["action"] == "sql.query" and r["status"] == 422)
    assert record["params"]["cli"].startswith("breakfix sql --api ")
    before = _audit_rows(api_server)
    replayed = cli("operator", "audit", "replay", record["id"])
    assert replayed.exit_code == 1 and "HTTP 422" in replayed.stderr, replayed.output
    assert _audit_rows(api_server) > before, "nothing was deleted, and the replay itself was audited"
    mine = ok_json(cli("viewer", "audit", "list", "--actor", "operator-user", "--limit", "5", "--json"))
    assert any(r["action"] == "sql.query" and r["status"] == 422 for r in mine)


def test_a_recorded_line_that_bypasses_the_api_is_never_replayed(cli: Any, api_server: fx.ApiServer) -> None:
    """A line as older versions recorded it (``breakfix sql QUERY`` ran on the raw store), or one
    written into the store by whoever can: replay refuses it and runs nothing."""
    store = api_server.store
    lines = ("breakfix sql 'TRUNCATE TABLE audit'", "breakfix db migrate --store chdb:///tmp/x",
             "breakfix nodes --store chdb:///tmp/x")  # fmt: skip
    for line in lines:
        forged = AuditRecord(id=f"api-forged-{uuid.uuid4().hex}", time=datetime.now(UTC), actor="agent-user",
                             role="agent", initiator="agent", surface="mcp", action="sql.query",
                             allowed=False, status=422, params={"cli": line})  # fmt: skip
        store.insert("audit", COLUMNS["audit"], [audit_row(forged)])
        before = _audit_rows(api_server)
        res = cli("operator", "audit", "replay", forged.id)
        assert res.exit_code == 2 and "does not go through the API" in res.stderr, res.output
        assert _audit_rows(api_server) >= before


def test_a_runbook_reads_one_step_per_line_and_tables_fit_80_columns(cli: Any) -> None:
    shown = cli("viewer", "runbooks", "reboot")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    steps = [ln.split()[:3] for ln in lines if ln[:1].isdigit()]
    assert steps[:3] == [["1", "cordon", "kubernetes.cordon"], ["2", "drain", "kubernetes.drain"],
                         ["3", "reboot", "node_agent.reboot"]]  # fmt: skip
    listing = cli("viewer", "runbooks").stdout
    assert all(len(ln) <= 80 for ln in listing.splitlines()) and "…" not in listing
    missing = cli("viewer", "runbooks", "no-such-book")
    assert missing.exit_code == 2 and "`breakfix runbooks` lists them" in missing.output


def test_lists_say_when_there_is_more_and_since_takes_a_duration(cli: Any) -> None:
    more = cli("viewer", "decisions", "--limit", "1")
    assert more.exit_code == 0 and "more rows exist" in more.stdout
    everything = cli("viewer", "decisions", "--limit", "1000")
    assert "more rows exist" not in everything.stdout
    recent = ok_json(cli("viewer", "decisions", "--since", "1h", "--json"))
    assert recent and all(r["time"] >= (datetime.now(UTC) - timedelta(hours=1, minutes=1)).isoformat()[:16]
                          for r in recent)  # fmt: skip
    assert ok_json(cli("viewer", "audit", "--since", "30m", "--limit", "2", "--json"))
