"""The ops client's error path, the MCP refusal text, and the contract between the command lines the
API records in audit records and the CLI that ``breakfix audit replay`` runs them through."""

from __future__ import annotations

import doctest
import shlex

import pytest
from typer.testing import CliRunner

import breakfix.mcptools.backend
import breakfix.opsclient.config
import breakfix.opsclient.errors
from breakfix.api.cli_line import cli_line
from breakfix.api.roles import OPERATIONS
from breakfix.cli.main import app
from breakfix.mcptools.backend import refusal
from breakfix.opsclient import ApiError

ARGS = {
    "pool": "train", "failure_class": "gpu_memory", "nodes": ["n1"], "node": "n1", "plan_id": "p1",
    "workflow_id": "w1", "on": True, "reason": "r", "mode": "auto", "resolution": "resume",
    "instance_id": "i1", "issue": {"category": "HARDWARE", "summary": "s"}, "machine_id": "m1",
    "template": "OutForRepair", "message": "m", "name": "out-for-repair", "actor": "a", "ticket_id": "T1",
    "summary": "s", "action": "gpu_reset", "comment": "c", "concurrency": 2, "rollback_policy": "none",
    "dry_run": False,
}  # fmt: skip


@pytest.mark.parametrize(
    "module", [breakfix.opsclient.errors, breakfix.opsclient.config, breakfix.mcptools.backend]
)
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


# sql.query replays through `breakfix sql`, which reads the local store, not the API.
@pytest.mark.parametrize("operation", sorted(OPERATIONS["admin"] - {"sql.query"}))
def test_every_recorded_command_line_parses(operation: str) -> None:
    """Parsing reaches the API call: a closed port answers, so the arguments were all accepted."""
    line = cli_line(operation, ARGS)
    assert line.startswith("breakfix "), operation
    res = CliRunner().invoke(app, shlex.split(line)[1:], env={"BREAKFIX_API_URL": "http://127.0.0.1:9"})
    assert "cannot reach the API" in res.stderr, f"{line}\n{res.output}"


def test_refusal_names_the_human_step_only_when_a_person_is_needed() -> None:
    forbidden = refusal("close_ticket", ApiError("role agent may not close", status=403, hint="x"))
    assert "HTTP 403" in forbidden and "breakfix ticket close" in forbidden
    approval = refusal("execute_repair_plan", ApiError("needs an approval token", status=403))
    assert "breakfix approve PLAN_ID" in approval
    missing = refusal("get_node", ApiError("no node n9", status=404, hint="check the id"))
    # hints are written for the agent, in terms of its tools, never the CLI's flags
    assert missing.endswith("look it up first (list_nodes, read_ticket, get_repair_plan).")
    assert "person" not in missing and "--" not in missing
