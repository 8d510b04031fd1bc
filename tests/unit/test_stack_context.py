"""The context file `breakfix up` writes: private, read for what options and variables leave unset,
with the identity picked by role (operator for the CLI, agent for `breakfix mcp`, BREAKFIX_AS wins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakfix.opsclient.config import ApiTarget, TokenFileError
from breakfix.stack.context import StackContext, apply_context, load_context

TOKENS = {"operator": "t-op", "approver": "t-ap", "agent": "t-ag"}


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ctx" / "context.yaml"
    monkeypatch.setenv("BREAKFIX_CONTEXT", str(path))
    monkeypatch.delenv("BREAKFIX_AS", raising=False)
    StackContext(broker="127.0.0.1:9", api_url="http://127.0.0.1:7", store="http://r:p@h:1",
                 tokens=TOKENS, pid=1, dir=str(tmp_path)).save()  # fmt: skip
    return path


def test_written_private_and_read_back(context: Path) -> None:
    assert context.stat().st_mode & 0o077 == 0
    ctx = load_context()
    assert ctx is not None and ctx.api_url == "http://127.0.0.1:7" and ctx.tokens == TOKENS


def test_fills_only_what_is_unset_with_the_roles_token(
    context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"BREAKFIX_BROKER": "kafka-1:9092"}
    apply_context(env)
    assert env == {"BREAKFIX_BROKER": "kafka-1:9092", "BREAKFIX_API_URL": "http://127.0.0.1:7",
                   "BREAKFIX_API_TOKEN": "t-op", "BREAKFIX_STORE_DSN": "http://r:p@h:1"}  # fmt: skip
    agent: dict[str, str] = {}
    apply_context(agent, role="agent")
    assert agent["BREAKFIX_API_TOKEN"] == "t-ag"
    monkeypatch.setenv("BREAKFIX_AS", "approver")
    second: dict[str, str] = {}
    apply_context(second)
    assert second["BREAKFIX_API_TOKEN"] == "t-ap"


def test_no_context_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREAKFIX_CONTEXT", str(tmp_path / "absent.yaml"))
    env: dict[str, str] = {}
    assert apply_context(env) is None and env == {}


def test_token_file_for_processes_started_without_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BREAKFIX_API_TOKEN", raising=False)
    (tmp_path / "agent.token").write_text("\n  tok-from-file \n")
    assert ApiTarget.resolve("http://api:1", None, tmp_path / "agent.token").token == "tok-from-file"
    monkeypatch.setenv("BREAKFIX_API_TOKEN_FILE", str(tmp_path / "agent.token"))
    assert ApiTarget.resolve("http://api:1").token == "tok-from-file"
    with pytest.raises(TokenFileError, match="cannot read"):
        ApiTarget.resolve("http://api:1", None, tmp_path / "missing.token")
