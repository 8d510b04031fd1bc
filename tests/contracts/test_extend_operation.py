"""docs/extend/operation.md followed step by step: a new operator operation (``nodes.count``, how
many nodes the inventory holds) is one entry in the operation table and one route handler, and with
nothing else written it is authorised by role, audited with a replayable command line, callable from
the ops client and from ``breakfix call``, and offered to agents as an MCP tool with its autonomy.
The API here is the product's own auth-and-audit layer served by uvicorn on loopback; only the
route table is cut down to the new route."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from fastapi import APIRouter, Depends, FastAPI
from mcp import Client
from typer.testing import CliRunner

from breakfix.api import auth
from breakfix.api.audit import AuditLog, CallFacts
from breakfix.api.audit import AuditRecord as Record
from breakfix.api.operations import OPERATIONS, READERS, Operation, Tool
from breakfix.api.tokens import parse_tokens
from breakfix.cli.main import app as cli
from breakfix.mcptools.server import build_server
from breakfix.opsclient import ApiError, ApiTarget, OpsClient
from tests.fixtures.api import _serve

# --- step 1: the entry in breakfix/api/operations.py ------------------------------------------------

COUNT = Operation(
    "nodes.count", "GET", "/nodes-count", READERS,
    tool=Tool("count_nodes", "how many nodes the inventory holds", "autonomous read"),
)  # fmt: skip

# --- step 2: the route handler in breakfix/api/routes_read.py -----------------------------------------


def router(inventory: list[str]) -> APIRouter:
    r = APIRouter()

    @r.get("/nodes-count", name="nodes.count")
    def count_nodes(pool: str = "") -> dict[str, Any]:
        return {"nodes": len([n for n in inventory if n.startswith(pool)]), "pool": pool or None}

    return r


class Audit(AuditLog):
    """The product's audit log without a store: it keeps the records it writes."""

    def __init__(self) -> None:
        super().__init__(None, None, "audit")
        self.records: list[Record] = []

    def record(self, facts: CallFacts, now: datetime) -> Record:
        rec = super().record(facts, now)
        self.records.append(rec)
        return rec


class Ctx:
    """What the auth-and-audit layer reads of the API's context."""

    def __init__(self) -> None:
        self.audit = Audit()
        self.tokens = parse_tokens(
            {"tok-viewer": {"actor": "vic", "role": "viewer"},
             "tok-agent": {"actor": "bot", "role": "agent"},
             "tok-tenant": {"actor": "nico", "role": "repair-tenant"}},
            "test",
        )  # fmt: skip

    def now(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
def api() -> Iterator[tuple[str, Ctx]]:
    OPERATIONS[COUNT.name] = COUNT
    ctx = Ctx()
    app = FastAPI(dependencies=[Depends(auth.authorize)])
    app.include_router(router(["train-1", "train-2", "infer-1"]))
    auth.install(app, ctx, 65_536)  # type: ignore[arg-type]  # the context stand-in above
    server, thread, port = _serve(app)
    try:
        yield f"http://127.0.0.1:{port}", ctx
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        del OPERATIONS[COUNT.name]


def test_the_client_calls_it_by_name_and_roles_apply(api: tuple[str, Ctx]) -> None:
    url, ctx = api
    with OpsClient(ApiTarget(url=url, token="tok-viewer")) as c:
        assert c.call("nodes.count", {"pool": "train"}) == {"nodes": 2, "pool": "train"}
    with OpsClient(ApiTarget(url=url, token="tok-tenant")) as c, pytest.raises(ApiError) as refused:
        c.call("nodes.count")
    assert refused.value.status == 403 and "may not nodes.count" in str(refused.value)
    assert [r.status for r in ctx.audit.records] == [200, 403]


def test_its_audit_line_replays_through_breakfix_call(api: tuple[str, Ctx]) -> None:
    url, ctx = api
    with OpsClient(ApiTarget(url=url, token="tok-viewer")) as c:
        c.call("nodes.count", {"pool": "infer"})
    line = ctx.audit.records[-1].params["cli"]
    assert line == "breakfix call nodes.count --arg=pool=infer"
    res = CliRunner().invoke(cli, [*shlex.split(line)[1:], "--server", url, "--token", "tok-viewer"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"nodes": 1, "pool": "infer"}
    assert ctx.audit.records[-1].params["cli"] == line, "the replay is the same call"


def test_agents_get_a_tool_with_its_autonomy(api: tuple[str, Ctx]) -> None:
    url, ctx = api
    server = build_server(ApiTarget(url=url, token="tok-agent"))

    async def session() -> tuple[Any, Any]:
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            answer = await client.call_tool("count_nodes", {"arguments": {"pool": "train"}})
            return tools["count_nodes"], answer

    tool, answer = anyio.run(session)
    assert "Autonomy: autonomous read" in (tool.description or "") and tool.annotations.read_only_hint
    assert not answer.is_error, answer.content
    assert json.loads(answer.content[0].text) == {"nodes": 2, "pool": "train"}
    assert ctx.audit.records[-1].initiator == "agent" and ctx.audit.records[-1].surface == "mcp"
