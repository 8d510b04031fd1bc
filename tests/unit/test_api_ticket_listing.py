"""``GET /tickets`` without a node lists recent tickets: both ticket backends answer ``recent``
(the built-in JSON store, and Jira through one JQL search on the loopback Jira stand-in)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actuators.tickets import Enrichment, HumanCloser, JiraBackend, JsonTicketStore, TicketDraft
from tests.fakes.jira_server import FakeJira


def draft(node: str) -> TicketDraft:
    return TicketDraft(summary=f"Xid 79 on {node}", description="", enrichment=Enrichment(node=node))


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as server:
        yield server


def test_builtin_store_lists_recent_tickets_newest_first(tmp_path: Path) -> None:
    store = JsonTicketStore(tmp_path)
    keys = [store.create(draft(f"n{i}"), "body").key for i in range(12)]  # BF-10 sorts after BF-9
    store.close(keys[-1], "fixed", HumanCloser("olga"))
    assert [t.key for t in store.recent(3)] == keys[::-1][:3]
    assert store.recent(3)[0].status == "closed"
    assert len(store.recent(100)) == 12


def test_jira_lists_recent_project_tickets(jira: FakeJira) -> None:
    backend = JiraBackend(jira.url, "OPS", user="bot@example.com", token="t0k3n", timeout_s=5)
    try:
        keys = [backend.create(draft(f"n{i}"), "body").key for i in range(3)]
        got = backend.recent(2)
    finally:
        backend.close_client()
    assert [t.key for t in got] == keys[::-1][:2]
    assert [t.node for t in got] == ["n2", "n1"]
    searches = [path for method, path in jira.requests if path.startswith("/rest/api/2/search")]
    assert searches, jira.requests
