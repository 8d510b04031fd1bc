"""Token tables (file, env, refusals), the role table, the audit CLI line and the SQL guard."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from breakfix.api import cli_line as cli_line_module
from breakfix.api.cli_line import cli_line
from breakfix.api.roles import OPERATIONS, READ, ROLES, allowed, roles_for
from breakfix.api.sqlguard import readonly_select
from breakfix.api.tokens import ENV_FILE, ENV_JSON, Principal, TokenError, load_tokens


def test_tokens_from_file_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "t.yaml"
    f.write_text('"abc": {actor: ann, role: approver}\n')
    assert load_tokens(f).lookup("abc") == Principal("ann", "approver")
    assert load_tokens(f).lookup("abd") is None
    monkeypatch.delenv(ENV_FILE, raising=False)
    monkeypatch.setenv(ENV_JSON, json.dumps({"xyz": {"actor": "bot", "role": "agent"}}))
    who = load_tokens().lookup("xyz")
    assert who == Principal("bot", "agent") and who.initiator == "agent"
    monkeypatch.setenv(ENV_FILE, str(f))
    assert load_tokens().lookup("abc") is not None  # the file wins over the inline JSON


@pytest.mark.parametrize(
    "text", ['"t": {actor: ann, role: root}', '"t": {role: viewer}', "- just a list", "{unclosed"]
)
def test_bad_token_files_name_the_problem(tmp_path: Path, text: str) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(text)
    with pytest.raises(TokenError, match=str(f)):
        load_tokens(f)


def test_no_tokens_configured_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FILE, raising=False)
    monkeypatch.delenv(ENV_JSON, raising=False)
    with pytest.raises(TokenError, match="--tokens"):
        load_tokens()


def test_role_table() -> None:
    assert set(OPERATIONS) == set(ROLES)
    assert all(OPERATIONS[r] >= READ for r in ("viewer", "operator", "approver", "agent", "admin"))
    assert not allowed("agent", "killswitch.set") and allowed("agent", "plans.execute")
    assert not allowed("operator", "plans.approve") and allowed("approver", "plans.approve")
    assert not allowed("nobody", "nodes.list")
    assert roles_for("plans.approve") == ["approver", "admin"]


def test_cli_lines_replay_the_call() -> None:
    assert doctest.testmod(cli_line_module).failed == 0
    line = cli_line(
        "plans.create",
        {"pool": "train", "failure_class": "gpu_hardware", "nodes": ["n1", "n2"], "dry_run": False},
    )
    assert line == "breakfix plan create --pool train --class gpu_hardware --node n1 --node n2 --no-dry-run"
    token_line = cli_line(
        "plans.execute", {"plan_id": "plan-1", "approval_token": "secret", "concurrency": 2}
    )
    assert "secret" not in token_line and token_line.startswith("breakfix plan execute plan-1 --token")
    assert cli_line("plans.create", {"selector": "not-a-dict"}) == "breakfix plans.create"
    assert cli_line("no.such.op", {}) == ""


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "empty"),
        ("DROP TABLE x", "only SELECT"),
        ("SELECT 1; DROP TABLE x", "one statement"),
        ("SELECT 1 SETTINGS readonly=0", "SETTINGS"),
        ("INSERT INTO t SELECT 1", "only SELECT"),
    ],
)
def test_sql_guard_refuses(query: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        readonly_select(query, 10)


def test_sql_guard_wraps_read_only() -> None:
    sql = readonly_select("WITH a AS (SELECT 1 AS x) SELECT x FROM a;", 5)
    assert sql == "SELECT * FROM (WITH a AS (SELECT 1 AS x) SELECT x FROM a) LIMIT 5 SETTINGS readonly = 1"
