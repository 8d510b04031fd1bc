"""Token tables (file, env, refusals), the role table, the audit CLI line and the SQL guard."""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import pytest

from breakfix.api import cli_line as cli_line_module
from breakfix.api.cli_line import cli_line
from breakfix.api.roles import OPERATIONS, READ, ROLES, allowed, roles_for
from breakfix.api.sqlguard import SqlRefused, judge, parse_ast
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


# ``EXPLAIN AST`` output of chdb 4.4 (ClickHouse 26.9) for the statements named, with the
# ``FORMAT Native`` clickhouse-connect appends; the attacks' full runs are in
# tests/integration/test_api_sql_attacks.py.
_OUTFILE = """SelectWithUnionQuery (children 3)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal UInt64_1
 Literal '/tmp/x.pth'
 Identifier Native"""  # SELECT 1 INTO/**/OUTFILE '/tmp/x.pth'
_JOIN_URL = """SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 2)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier db.t (alias t)
    TablesInSelectQueryElement (children 2)
     TableExpression (children 1)
      Function url (children 1)
       ExpressionList (children 2)
        Literal 'http://x'
        Identifier CSV
     TableJoin (children 1)
      Literal UInt64_1
 Identifier Native"""  # SELECT * FROM db.t AS t JOIN url('http://x', CSV) ON 1
_NUMBERS = """SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function numbers (children 1)
       ExpressionList (children 1)
        Literal UInt64_10
 Identifier Native"""  # SELECT * FROM numbers(10)


@pytest.mark.parametrize(
    ("ast", "database", "fragment"),
    [
        (_OUTFILE, "db", "INTO OUTFILE"),
        (_JOIN_URL, "db", "url()"),
        (_JOIN_URL.replace("Function url", "Function numbers"), "other", "table db.t"),
        (_NUMBERS.replace(" Identifier Native", " Identifier JSON"), "db", "FORMAT"),
        ("InsertQuery   (children 1)\n Identifier t", "db", "only one SELECT"),
    ],
)
def test_sql_judge_refuses(ast: str, database: str, fragment: str) -> None:
    with pytest.raises(SqlRefused, match=re.escape(fragment)):
        judge(parse_ast(ast.splitlines()), database)


def test_sql_judge_allows_a_select_of_the_database_and_generated_rows() -> None:
    judge(parse_ast(_NUMBERS.splitlines()), "db")
    judge(parse_ast(_JOIN_URL.replace("Function url", "Function numbers").splitlines()), "db")
