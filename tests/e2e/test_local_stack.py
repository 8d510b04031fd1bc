"""An operator's day on the local stack, driven through the `breakfix` console script as a newcomer
following docs/operate/local-stack.md would: one `breakfix up` (shared by every test here, on free
ports, its context file in a temporary place), then the fleet, a plan, a second person's approval,
execution on the simulated actuators watched to success, levers set and read back, an MCP client
over stdio, the actuator stage driving the stack's real node agent process, a second process kept
off the stack's embedded store, and `breakfix down` stopping every process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mcp import Client, StdioServerParameters

from agents.nodeagent.journal import RequestJournal
from breakfix.stack.context import StackContext, load_context
from schemas.decision import GuardCheck
from schemas.signing import SEAL
from schemas.topics import TOPIC_BY_NAME, Topic
from streams.kafka.embedded_broker import free_port
from streams.keys import load_signer
from streams.settings import StreamSettings
from tests.fakes.workflow_doubles import xid79_decision

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXE = str(Path(sys.executable).with_name("breakfix"))
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    env: dict[str, str]
    ctx: StackContext
    context_file: Path

    def run(
        self, *args: str, role: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **({"BREAKFIX_AS": role} if role else {})}
        done = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, f"{args}: {done.stderr}"
        return done

    def json(self, *args: str, role: str | None = None) -> Any:
        return json.loads(self.run(*args, "--json", role=role).stdout)


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKFIX_")}
    return {**env, "BREAKFIX_CONTEXT": str(tmp / "context.yaml"), "COLUMNS": "80"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    env = _clean_env(tmp)
    up = subprocess.run(
        [EXE, "up", "--dir", str(tmp / "local"), "--broker-port", str(free_port()),
         "--api-port", str(free_port()), "--fleet", "24"],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        ctx = _context(env)
        yield Stack(env, ctx, tmp / "context.yaml")
    finally:
        subprocess.run([EXE, "down"], env=env, capture_output=True, text=True, timeout=120)


def _context(env: dict[str, str]) -> StackContext:
    old = os.environ.get("BREAKFIX_CONTEXT")
    os.environ["BREAKFIX_CONTEXT"] = env["BREAKFIX_CONTEXT"]
    try:
        ctx = load_context()
    finally:
        if old is None:
            del os.environ["BREAKFIX_CONTEXT"]
        else:
            os.environ["BREAKFIX_CONTEXT"] = old
    assert ctx is not None
    return ctx


def _eventually(check: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def test_up_writes_a_private_context_and_nodes_lists_the_fleet(stack: Stack) -> None:
    assert stack.context_file.stat().st_mode & 0o077 == 0  # it holds tokens
    assert {"operator", "approver", "viewer", "agent", "admin"} <= set(stack.ctx.tokens)
    rows = _eventually(lambda: (r := stack.json("nodes")) and len(r) == 24 and r)
    assert rows and len(rows) == 24 and {r["pool"] for r in rows} == {"train-a", "train-b", "infer-a"}
    table = stack.run("nodes").stdout
    assert all(len(line) <= 80 for line in table.splitlines()), table
    assert "…" not in table and "nan" not in table
    assert rows[0]["labels"]["topology.kubernetes.io/zone"] == "az1"  # the simulator's inventory labels
    labelled = stack.run("nodes", "--pool", "infer-a", "--show-labels").stdout
    assert all(len(line) <= 80 for line in labelled.splitlines()), labelled
    assert any(ln.rstrip().endswith(" nvidia.com/gpu.product=A100-SXM4-80GB") for ln in labelled.splitlines())


def _affected(stack: Stack) -> list[dict[str, Any]]:
    """Nodes the pipeline holds for gpu_hardware (the simulated fleet's Xid 79 faults)."""
    rows = stack.json("nodes")
    return [r for r in rows if r["failure_class"] == "gpu_hardware" and r["state"] != "Healthy"]


def test_plan_for_a_class_in_a_pool_lists_only_its_affected_nodes(stack: Stack) -> None:
    hit = _eventually(lambda: _affected(stack))
    assert hit, "the simulated Xid 79 faults never showed up as gpu_hardware nodes"
    pool = hit[0]["pool"]
    plan = stack.json("plan", "create", "--pool", pool, "--class", "gpu_hardware")
    expected = sorted(r["node"] for r in hit if r["pool"] == pool)
    assert sorted(n["node"] for n in plan["nodes"]) == expected
    assert all(n["state"] != "Healthy" for n in plan["nodes"]) and plan["notes"] == []


def test_second_person_approves_and_the_plan_runs_to_success_on_simulated_actuators(stack: Stack) -> None:
    node = _eventually(lambda: _affected(stack))[0]
    plan = stack.json("plan", "create", "--pool", node["pool"], "--class", "gpu_hardware",
                      "--node", node["node"], "--execute-ready")  # fmt: skip
    assert plan["approval"]["approvals_needed"] == 1
    own = stack.run("approve", plan["id"], check=False)  # the requester (operator) cannot approve
    assert own.returncode == 1 and len(own.stderr.strip().splitlines()) <= 2 and "approver" in own.stderr
    token = stack.run("approve", plan["id"], role="approver").stdout.strip()
    wf = stack.run("plan", "execute", plan["id"], "--token", token).stdout.strip()
    watched = stack.run("workflow", "watch", wf, "--timeout", "90", check=False)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    shown = stack.json("workflow", "show", wf)
    assert shown["status"] == "succeeded"
    assert [s["step"] for s in shown["steps"]][-1] == "uncordon"
    assert any(w["id"] == wf for w in stack.json("workflow", "list"))
    assert any(p["id"] == plan["id"] and p["status"] == "executed" for p in stack.json("plan", "list"))
    # The plan's GPU step ran on the stack's node agent process (over the commands topic), which
    # answered under its own key; the actuator stage ran the rest on the simulated fleet.
    agent = stack.json("sql", "SELECT JSONExtractString(data, 'action') AS action FROM breakfix.events "
                       f"WHERE type = 'action.result' AND source = 'node-agent/{node['node']}'")  # fmt: skip
    assert {r["action"] for r in agent} & {"gpu_reset", "reboot"}, agent


def test_kill_switch_and_a_mode_are_set_and_read_back(stack: Stack) -> None:
    stack.run("killswitch", "on", "--pool", "train-a", "--reason", "e2e drill")
    assert stack.json("killswitch", "status")["pools"] == {"train-a": True}
    stack.run("mode", "set", "gpu_memory", "shadow", "--reason", "e2e drill")
    modes = {m["scope"]: m for m in stack.json("mode", "show")}
    assert modes["class:gpu_memory"]["value"] == {"mode": "shadow"}
    assert modes["class:gpu_memory"]["actor"] == "local-operator"
    levers = {(r["kind"], r["scope"]) for r in stack.json("levers")}
    assert {("killswitch", "pool:train-a"), ("mode", "class:gpu_memory")} <= levers
    stack.run("killswitch", "off", "--pool", "train-a", "--reason", "e2e drill over")
    assert stack.json("killswitch", "status")["pools"] == {"train-a": False}


def test_ad_hoc_sql_reads_the_shared_store_and_never_writes(stack: Stack) -> None:
    """Through the API (as the store's read-only user) and straight at the store (the context's DSN
    is that user too): reads answer, a write is refused either way."""
    through_api = stack.run("sql", "--api", "SELECT count() FROM node_inventory")
    assert any(ch.isdigit() for ch in through_api.stdout)
    refused = stack.run("sql", "--api", "INSERT INTO audit (id) VALUES ('x')", check=False)
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) <= 2
    direct = stack.run("sql", "DROP TABLE breakfix.audit", check=False)
    assert direct.returncode != 0 and "readonly" in direct.stderr.lower()


def test_mcp_client_over_stdio_reads_state_and_is_refused_a_mutation_with_a_hint(
    stack: Stack, tmp_path: Path
) -> None:
    token_file = tmp_path / "agent.token"
    token_file.write_text(stack.ctx.tokens["agent"] + "\n")
    # The SDK starts the server without the parent's environment: the API and the token come from
    # the server's own configuration (its arguments), as an MCP client's config file names them.
    params = StdioServerParameters(
        command=EXE,
        args=["mcp", "--server", stack.ctx.api_url, "--token-file", str(token_file)],
        env={"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "BREAKFIX_CONTEXT": str(tmp_path / "none")},
        cwd=str(REPO),
    )

    async def session() -> tuple[Any, Any, Any, str]:
        async with Client(params, read_timeout_seconds=60) as client:
            nodes = await client.call_tool("list_nodes", {"pool": "train-a"})
            node = next(r for r in stack.json("nodes") if r["state"] != "Healthy")
            plan = await client.call_tool(
                "create_repair_plan",
                {"pool": node["pool"], "failure_class": node["failure_class"], "nodes": [node["node"]],
                 "dry_run": False},
            )  # fmt: skip
            plan_id = json.loads(plan.content[0].text)["id"]
            refused = await client.call_tool("execute_repair_plan", {"plan_id": plan_id})
            return client.server_info, nodes, refused, plan_id

    info, nodes, refused, plan_id = anyio.run(session)
    assert info.name == "breakfix" and info.version and info.version != "0+unknown"
    assert not nodes.is_error and "train-a" in nodes.content[0].text
    text = refused.content[0].text
    assert refused.is_error and "breakfix approve PLAN_ID" in text and "needs a person" in text
    assert stack.json("plan", "show", plan_id)["workflow_id"] is None  # nothing ran


def _records(settings: StreamSettings, topic: Topic, until: Any, timeout_s: float) -> list[dict[str, Any]]:
    """Every record of ``topic`` (all partitions, from the start) until ``until(records)`` holds."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False)
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            tps = [TopicPartition(settings.topic(topic), p) for p in range(TOPIC_BY_NAME[topic].partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=300)).values():
                    out.extend(orjson.loads(r.value) for r in batch)
                if until(out):
                    break
            return out
        finally:
            await consumer.stop()

    return anyio.run(read)


def test_the_actuator_stage_runs_gpu_steps_on_the_stacks_node_agent(stack: Stack) -> None:
    """A decision as the stack's guard signs it (its key and its current epoch: the guard itself
    emits executable decisions only for auto-mode classes and approved plans) reaches the actuator
    stage; the GPU reset goes over the commands topic to the `breakfix node-agent` process, which
    answers with its own signature; the simulated fleet does the rest, and the run succeeds."""
    settings = StreamSettings(broker=stack.ctx.broker, keys_dir=Path(stack.ctx.dir) / "keys")
    signed = _records(settings, Topic.DECISIONS, lambda rs: len(rs) > 0, 20)
    epoch = max(int(r[SEAL]["epoch"]) for r in signed if isinstance(r.get(SEAL), dict))
    node = "gpu-00000"  # Healthy in the simulated fleet, pool train-a
    pool = next(r["pool"] for r in stack.json("nodes") if r["node"] == node)
    decision = xid79_decision(
        node=node, decision_id=f"dec-e2e-agent-{time.time_ns()}", guard=[
            GuardCheck(name="headroom", passed=True, figures={"pool_free_gpus": 64}),
            GuardCheck(name="exclusion", passed=True, figures={"pool": pool}),
        ],
    )  # fmt: skip
    body = load_signer(settings, "guard").seal(decision.model_dump(mode="json"), time.time(), epoch)

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                settings.topic(Topic.DECISIONS), orjson.dumps(body), key=node.encode()
            )
        finally:
            await producer.stop()

    anyio.run(publish)

    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if (e.get("data") or {}).get("decision_id") == decision.id]

    events = mine(_records(settings, Topic.EVENTS, lambda es: any(
        e["data"]["step"] == "workflow" for e in mine(es)), 90))  # fmt: skip
    steps = [(e["data"]["step"], e["data"]["status"]) for e in events if e["source"] == "breakfix.workflow"]
    assert steps[-1] == ("workflow", "succeeded"), steps
    assert ("gpu-reset", "succeeded") in steps and ("uncordon", "succeeded") in steps
    answers = [e for e in events if e["source"] == f"node-agent/{node}"]
    assert [a["data"]["action"] for a in answers] == ["gpu_reset"]
    assert answers[0][SEAL]["signer"] == "agent" and answers[0]["data"]["status"] == "succeeded"
    journal = RequestJournal(Path(stack.ctx.dir) / "agent" / f"requests-{node}.sqlite")
    try:  # journaled on the agent's disk (it answers a redelivery from there, never acting twice)
        entry = journal.get(answers[0]["data"]["request_id"])
    finally:
        journal.close()
    assert entry is not None and entry.result is not None


def test_a_second_process_on_the_stacks_store_is_refused_naming_the_owner(
    stack: Stack, tmp_path: Path
) -> None:
    """The stack's owner process serves the embedded store; a second API opening its directory (the
    issue's 76-line chdb traceback) is refused in one or two lines that name the owner, the stack's
    ClickHouse HTTP endpoint and `breakfix down`, and the stack goes on working
    (tests/integration/test_store_owner.py has `breakfix sql` against another owner)."""
    dsn = f"chdb://{stack.ctx.dir}/chdb"
    endpoint = stack.ctx.store.rsplit("@", 1)[-1]  # host:port of the served store, without the password
    done = stack.run(
        "serve", "--port", str(free_port()), "--store", dsn, "--broker", stack.ctx.broker,
        "--tokens", f"{stack.ctx.dir}/tokens.yaml", "--state-dir", str(tmp_path / "api"), check=False,
    )  # fmt: skip
    err = done.stderr.strip()
    assert done.returncode != 0 and "Traceback" not in err and len(err.splitlines()) <= 2, err
    assert f"pid {stack.ctx.pid}" in err and endpoint in err and "breakfix down" in err, err
    assert len(stack.json("nodes")) == 24


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children in their own sessions included), from /proc."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parent[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def test_down_stops_every_process_and_removes_the_context(stack: Stack) -> None:
    pid = stack.ctx.pid
    procs = _descendants(pid) | {pid}
    assert len(procs) >= 7  # owner, broker, worker, sink, actuator stage, node agent, API
    names = json.loads((Path(stack.ctx.dir) / "pids.json").read_text())
    assert {"broker", "worker-0", "sink", "actuators", "node-agent", "api"} <= set(names)
    assert set(names.values()) <= procs
    shown = stack.run("status").stdout
    assert f"node-agent {names['node-agent']}" in shown and "not running" not in shown, shown
    stack.run("down")
    assert not stack.context_file.exists()
    alive = {p for p in procs if Path(f"/proc/{p}").exists() and "Z" not in _state(p)}
    assert alive == set()
    with pytest.raises(httpx.TransportError):
        httpx.get(stack.ctx.api_url + "/healthz", timeout=2)
