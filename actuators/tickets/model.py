"""Tickets as the operators' tracker sees them, with the enrichment an on-call operator needs on every alert:
node identity, active job count, last successful playbook run, and a link to the ticket already open
for the node (so nobody files a duplicate), plus the diagnostic bundle as an attachment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Initiator = Literal["human", "agent", "automation"]


class PlaybookRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    playbook: str
    version: str
    decision_id: str
    finished_at: datetime


class Enrichment(BaseModel):
    model_config = ConfigDict(frozen=True)

    node: str
    pool: str | None = None
    rack: str | None = None
    sku: str | None = None
    gpu: int | None = None
    active_jobs: int | None = None
    """From the scheduler at ticket time; None when it could not be read (never a silent zero)."""
    last_successful_run: PlaybookRun | None = None
    existing_ticket: str | None = None
    """Link to the ticket already open for this node, when there is one."""

    def lines(self) -> list[str]:
        """Human-readable lines for a ticket body or comment."""
        identity = ", ".join(
            f"{k}={v}"
            for k, v in (("pool", self.pool), ("rack", self.rack), ("sku", self.sku), ("gpu", self.gpu))
            if v is not None
        )
        last = self.last_successful_run
        return [
            f"Node: {self.node}" + (f" ({identity})" if identity else ""),
            f"Active jobs: {'unknown' if self.active_jobs is None else self.active_jobs}",
            "Last successful playbook run: "
            + (
                f"{last.playbook} {last.version} at {last.finished_at.isoformat()} ({last.decision_id})"
                if last
                else "none"
            ),
            f"Existing ticket: {self.existing_ticket or 'none'}",
        ]


class TicketDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    summary: str = Field(min_length=1, max_length=255)
    description: str = ""
    enrichment: Enrichment
    decision_id: str | None = None
    labels: tuple[str, ...] = ()


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    size: int
    sha256: str


class Comment(BaseModel):
    model_config = ConfigDict(frozen=True)

    author: str
    body: str
    at: datetime


class Ticket(BaseModel):
    key: str
    link: str
    node: str
    summary: str
    description: str
    status: Literal["open", "closed"] = "open"
    labels: list[str] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)
    decision_id: str | None = None
    closed_by: str | None = None
    resolution: str | None = None


def node_label(node: str) -> str:
    """The label that finds a node's tickets in any tracker."""
    return f"breakfix-node-{node}"


def render_description(draft: TicketDraft) -> str:
    parts = [draft.description.strip(), "", *draft.enrichment.lines()]
    if draft.decision_id:
        parts.append(f"Decision: {draft.decision_id}")
    return "\n".join(parts).strip()
