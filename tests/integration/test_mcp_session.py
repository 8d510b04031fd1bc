"""An agent's MCP session, through the SDK's own client, over both transports, against the real API.

The server runs as a separate process (stdio: spawned by the client as ``python -m breakfix.mcptools``;
streamable HTTP: ``breakfix mcp --transport http`` on a free loopback port). The agent reads state,
opens a ticket, creates a plan, and is refused closing the ticket and executing the plan without a
human approval; every call shows up in ``GET /audit`` as the agent's, and an operator replays the
agent's create-plan call from the CLI under their own token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

from breakfix.cli.main import app
from streams.kafka.embedded_broker import free_port
from tests.fixtures import api as fx

api_server = fx.api_server
pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TOOLS = {
    "query_sql", "get_metrics", "list_nodes", "get_node", "list_runbooks", "read_ticket", "create_ticket",
    "close_ticket", "create_repair_plan", "get_repair_plan", "execute_repair_plan", "get_workflow",
}  # fmt: skip


def text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def data(result: Any) -> Any:
    assert not result.is_error, text(result)
    out = result.structured_content
    return out["result"] if isinstance(out, dict) and set(out) == {"result"} else out


async def agent_session(client: Client, pool_node: str) -> dict[str, Any]:
    """What an agent does on an incident; returns the ids it saw so the audit can be checked."""
    listed = await client.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    by_name = {t.name: t for t in listed.tools}
    assert by_name["list_nodes"].annotations.read_only_hint is True
    assert "needs a human" in (by_name["close_ticket"].description or "")
    # the API refuses rollback_policy none (the actuator stage runs the playbook's rollback): not offered
    assert "rollback_policy" not in by_name["execute_repair_plan"].input_schema["properties"]

    nodes = data(await client.call_tool("list_nodes", {"pool": "train"}))
    assert {n["node"] for n in nodes} == set(fx.TRAIN)
    node = data(await client.call_tool("get_node", {"node": "gpu-node-1"}))
    assert node["state"] == "Quarantined" and node["decisions"]
    assert "canary-reboot" in {r["name"] for r in data(await client.call_tool("list_runbooks", {}))}
    assert data(await client.call_tool("query_sql", {"query": "SELECT 1 AS one"}))["rows"] == [[1]]

    ticket = data(await client.call_tool("create_ticket", {"node": pool_node, "summary": "Xid 79 again"}))
    key = ticket["ticket"]["key"]
    read = data(await client.call_tool("read_ticket", {"ticket_id": key}))
    assert read["key"] == key and read["status"] == "open"
    closed = await client.call_tool(
        "close_ticket", {"ticket_id": key, "resolution": "agent thinks it is fine"}
    )
    assert closed.is_error and "HTTP 403" in text(closed) and "breakfix ticket close" in text(closed)

    plan = data(await client.call_tool("create_repair_plan", {
        "pool": "train", "failure_class": "gpu_hardware", "nodes": [pool_node], "dry_run": False,
    }))  # fmt: skip
    assert plan["created_by"] == "agent-user" and plan["status"] == "pending_approval"
    refused = await client.call_tool("execute_repair_plan", {"plan_id": plan["id"]})
    assert refused.is_error and "HTTP 403" in text(refused) and "breakfix approve" in text(refused)
    after = data(await client.call_tool("get_repair_plan", {"plan_id": plan["id"]}))
    assert after["workflow_id"] is None  # nothing ran
    return {"plan": plan, "ticket": key}


def audit_of(api_server: fx.ApiServer, actor: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{api_server.url}/audit", params={"actor": actor, "limit": 500},
                     headers=api_server.headers("viewer"))  # fmt: skip
    resp.raise_for_status()
    return list(resp.json())


def assert_audited(api_server: fx.ApiServer, seen: dict[str, Any]) -> dict[str, Any]:
    """The agent's calls are in the audit log as the agent's, refusals included; returns the
    create-plan record."""
    rows = [r for r in audit_of(api_server, "agent-user") if r["surface"] == "mcp"]
    assert rows and all(r["initiator"] == "agent" and r["role"] == "agent" for r in rows)
    plan_id, key = seen["plan"]["id"], seen["ticket"]
    by_target = {(r["params"]["method"], r["target"], r["status"]) for r in rows}
    assert ("POST", f"/repair-plans/{plan_id}/execute", 403) in by_target
    assert ("POST", f"/tickets/{key}/close", 403) in by_target
    assert ("GET", "/nodes", 200) in by_target
    node = seen["plan"]["nodes"][0]["node"]
    creates = [r for r in rows if r["target"] == "/repair-plans" and r["status"] == 200]
    return next(r for r in creates if f"--node {node}" in r["params"]["cli"])  # newest first


def replay_as_operator(api_server: fx.ApiServer, record: dict[str, Any], plan: dict[str, Any]) -> None:
    env = {"BREAKFIX_API_URL": api_server.url, "BREAKFIX_API_TOKEN": api_server.tokens["operator"]}
    res = CliRunner().invoke(app, ["audit", "replay", record["id"], "--json"], env=env)
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["created_by"] == "operator-user" and again["id"] != plan["id"]
    assert [n["node"] for n in again["nodes"]] == [n["node"] for n in plan["nodes"]]


def test_stdio_session(api_server: fx.ApiServer) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "breakfix.mcptools"],
        env={"BREAKFIX_API_URL": api_server.url, "BREAKFIX_API_TOKEN": api_server.tokens["agent"]},
        cwd=str(REPO),
    )

    async def main() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=30) as client:
            seen = await agent_session(client, "gpu-node-1")
            return seen

    seen = anyio.run(main)
    record = assert_audited(api_server, seen)
    replay_as_operator(api_server, record, seen["plan"])


@pytest.fixture
def mcp_http(api_server: fx.ApiServer) -> Iterator[str]:
    """``breakfix mcp --transport http`` started with an admin token in its environment, which it
    must never lend out: each agent brings its own bearer token."""
    port = free_port()
    env = {**os.environ, "BREAKFIX_API_URL": api_server.url, "BREAKFIX_API_TOKEN": api_server.tokens["admin"]}
    exe = Path(sys.executable).with_name("breakfix")
    proc = subprocess.Popen(
        [str(exe), "mcp", "--transport", "http", "--port", str(port)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=0.5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"MCP server did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@asynccontextmanager
async def http_client(url: str, token: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=30) as client,
    ):
        yield client


def test_streamable_http_session(api_server: fx.ApiServer, mcp_http: str) -> None:
    async def main() -> dict[str, Any]:
        async with http_client(mcp_http, api_server.tokens["agent"]) as client:
            return await agent_session(client, "gpu-node-3")

    seen = anyio.run(main)
    record = assert_audited(api_server, seen)
    replay_as_operator(api_server, record, seen["plan"])

    async def anonymous() -> Any:
        async with http_client(mcp_http, "not-a-token") as client:
            return await client.call_tool("list_nodes", {})

    refused = anyio.run(anonymous)
    assert refused.is_error and "HTTP 401" in text(refused) and "Authorization: Bearer" in text(refused)


def test_http_client_without_a_token_is_refused_never_served_as_the_server(
    api_server: fx.ApiServer, mcp_http: str
) -> None:
    """The MCP server holds an admin token in its environment; a client that sends no token of its
    own is refused before any API call, and the mutation it asked for never happens."""
    def tickets() -> int:
        answer = httpx.get(
            api_server.url + "/tickets", headers={"Authorization": f"Bearer {api_server.tokens['admin']}"}
        )
        return len(answer.json())

    before = tickets()

    async def anonymous() -> Any:
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            Client(streamable_http_client(mcp_http, http_client=http), read_timeout_seconds=30) as client,
        ):
            return await client.call_tool("create_ticket", {"node": "gpu-node-2", "summary": "x"})

    refused = anyio.run(anonymous)
    assert refused.is_error and "carried none" in text(refused)
    assert tickets() == before
