"""Tickets: the on-call enrichment, one open ticket per node, bundle attached, and only a person closes.

The built-in store is exercised on disk; the Jira adapter over real HTTP against a loopback Jira
stand-in (tests/fakes/jira_server.py) that enforces Jira's auth and attachment-header rules.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actuators.base import PermanentError, Refused, StepContext, StepSpec, TemporaryError
from actuators.tickets import (
    Enrichment,
    JiraBackend,
    JsonTicketStore,
    PlaybookRun,
    TicketActuator,
    TicketDraft,
    TicketService,
)
from tests.fakes.jira_server import FakeJira

LAST_RUN = PlaybookRun(
    playbook="gpu-reset", version="1.2.0", decision_id="d-7", finished_at=datetime(2026, 4, 2, tzinfo=UTC)
)


class History:
    def last_success(self, node: str) -> PlaybookRun | None:
        return LAST_RUN if node == "gpu-n1" else None


def draft(node: str = "gpu-n1", decision: str = "d-100", jobs: int | None = 3) -> TicketDraft:
    return TicketDraft(
        summary=f"Thermal throttling on {node}",
        description="GPU 2 at 92C under load",
        enrichment=Enrichment(node=node, pool="train-a", rack="r12", sku="H100-SXM", gpu=2, active_jobs=jobs),
        decision_id=decision,
    )


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "diag-gpu-n1.tar.gz"
    path.write_bytes(b"\x1f\x8b bundle bytes" * 100)
    return path


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as server:
        yield server


def jira_backend(server: FakeJira, token: str = "t0k3n") -> JiraBackend:
    return JiraBackend(server.url, "OPS", user="bot@example.com", token=token, timeout_s=5)


def test_builtin_store_enriches_dedupes_and_attaches(tmp_path: Path, bundle: Path) -> None:
    service = TicketService(JsonTicketStore(tmp_path / "tickets"), history=History())
    first = service.file(draft(), bundle)
    assert first.created and first.ticket.key == "BF-1"
    body = first.ticket.description
    assert "Node: gpu-n1 (pool=train-a, rack=r12, sku=H100-SXM, gpu=2)" in body
    assert "Active jobs: 3" in body
    assert "Last successful playbook run: gpu-reset 1.2.0" in body
    assert "Existing ticket: none" in body
    assert first.attachment is not None and first.attachment.size == bundle.stat().st_size

    second = service.file(draft(decision="d-101", jobs=None), None)
    assert not second.created and second.ticket.key == "BF-1", "one open ticket per node"
    stored = JsonTicketStore(tmp_path / "tickets").get("BF-1")
    assert f"Existing ticket: {first.ticket.link}" in stored.comments[0].body
    assert "Active jobs: unknown" in stored.comments[0].body

    other = service.file(draft(node="gpu-n2"))
    assert other.created and other.ticket.key == "BF-2"
    assert "Last successful playbook run: none" in other.ticket.description


@pytest.mark.parametrize("initiator", ["agent", "automation"])
def test_closing_is_refused_for_agents_and_automation(tmp_path: Path, initiator: str) -> None:
    store = JsonTicketStore(tmp_path / "tickets")
    service = TicketService(store)
    key = service.file(draft()).ticket.key
    with pytest.raises(Refused, match="needs a human"):
        service.close(key, "fixed", actor="mcp-agent-1", initiator=initiator)  # type: ignore[arg-type]
    assert store.get(key).status == "open"
    service.close(key, "GPU replaced", actor="alice", initiator="human")
    closed = store.get(key)
    assert closed.status == "closed" and closed.closed_by == "alice"
    assert service.file(draft()).created, "a closed ticket is not reused"


def test_ticket_step_takes_enrichment_from_earlier_steps_and_cannot_close(
    tmp_path: Path, bundle: Path
) -> None:
    store = JsonTicketStore(tmp_path / "tickets")
    act = TicketActuator(TicketService(store), inventory=lambda n: {"rack": "r7", "sku": "H200"})

    class Open:
        def killswitch_on(self, pool: str | None) -> bool:
            return False

        def excluded(self, node: str, pool: str | None) -> bool:
            return False

    ctx = StepContext(
        decision_id="d-5",
        node="gpu-n9",
        step="ticket",
        playbook="thermal-ticket",
        playbook_version="1.0.0",
        safety=Open(),
        deadline=time.monotonic() + 10,
        pool="infer-b",
        failure_class="thermal",
        reasons=("GPU 1 throttled 40% of the last hour",),
        outputs={"status": {"active_jobs": 2}, "diag": {"bundle_path": str(bundle)}},
    )
    spec = StepSpec(
        name="ticket",
        actuator="ticket",
        operation="create",
        mutating=False,
        timeout_s=10,
        params={"attach_from": "diag"},
    )
    result = act.execute(spec, ctx)
    ticket = store.get(result.outputs["ticket"])
    assert "Active jobs: 2" in ticket.description and "rack=r7" in ticket.description
    assert "GPU 1 throttled" in ticket.description
    assert [a.name for a in ticket.attachments] == [bundle.name]
    with pytest.raises(Refused, match="needs a human"):
        act.execute(spec.model_copy(update={"operation": "close"}), ctx)
    assert store.get(ticket.key).status == "open"


def test_jira_create_comment_attach_and_human_close(jira: FakeJira, bundle: Path) -> None:
    backend = jira_backend(jira)
    service = TicketService(backend, history=History())
    first = service.file(draft(), bundle)
    assert first.created and first.ticket.key == "OPS-1"
    assert first.ticket.link == f"{jira.url}/browse/OPS-1"
    issue = jira.issues["OPS-1"]
    assert "breakfix-node-gpu-n1" in issue["fields"]["labels"]
    assert "Active jobs: 3" in issue["fields"]["description"]
    assert issue["attachments"][0]["content"] == bundle.read_bytes()

    second = service.file(draft(decision="d-2"))
    assert not second.created and second.ticket.key == "OPS-1"
    assert f"Existing ticket: {jira.url}/browse/OPS-1" in issue["comments"][0]["body"]

    with pytest.raises(Refused):
        service.close("OPS-1", "done", actor="agent-x", initiator="agent")
    assert ("POST", "/rest/api/2/issue/OPS-1/transitions") not in jira.requests
    service.close("OPS-1", "replaced GPU", actor="bob", initiator="human")
    assert issue["fields"]["status"]["statusCategory"]["key"] == "done"
    assert backend.find_open("gpu-n1") is None
    backend.close_client()


def test_jira_errors_map_to_retry_or_fail(jira: FakeJira) -> None:
    backend = jira_backend(jira)
    jira.fail_next = [503]
    with pytest.raises(TemporaryError):
        backend.find_open("gpu-n1")
    jira.fail_next = [429]
    with pytest.raises(TemporaryError):
        backend.create(draft(), "body")
    with pytest.raises(PermanentError, match="404"):
        backend.comment("OPS-99", "hello", "breakfix")
    with pytest.raises(PermanentError, match="401"):
        jira_backend(jira, token="wrong").find_open("gpu-n1")
    backend.close_client()


def test_jira_attachment_needs_the_xsrf_header(jira: FakeJira) -> None:
    """The stand-in enforces Jira's rule, so the adapter's header is what makes the upload pass."""
    backend = jira_backend(jira)
    key = backend.create(draft(), "body").key
    bare = backend.http.post(f"/rest/api/2/issue/{key}/attachments", files={"file": ("x", b"1")})
    assert bare.status_code == 403
    assert backend.attach(key, "x.txt", b"12345").size == 5
    backend.close_client()
