"""Filing tickets the way on-call operators want them: one open ticket per node (later findings
become comments on it, with a link back), every ticket enriched, the diagnostic bundle attached, and
closing left to a person."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from actuators.tickets.backend import HumanCloser, TicketBackend
from actuators.tickets.model import (
    Attachment,
    Initiator,
    PlaybookRun,
    Ticket,
    TicketDraft,
    render_description,
)

MAX_BUNDLE_BYTES = 50 * 1024 * 1024


class RunHistory(Protocol):
    def last_success(self, node: str) -> PlaybookRun | None:
        """The node's last playbook run that finished successfully (workflow records)."""
        ...


@dataclass(frozen=True)
class Filed:
    """``changed`` is false when the ticket already carried this decision (a repeated step)."""

    ticket: Ticket
    created: bool
    attachment: Attachment | None
    changed: bool = True


class TicketService:
    def __init__(self, backend: TicketBackend, history: RunHistory | None = None) -> None:
        self.backend = backend
        self.history = history

    def file(self, draft: TicketDraft, bundle: Path | None = None, author: str = "breakfix") -> Filed:
        node = draft.enrichment.node
        existing = self.backend.find_open(node)
        if existing is not None and draft.decision_id and existing.decision_id == draft.decision_id:
            return Filed(existing, False, None, changed=False)  # the same step again: already filed
        last = draft.enrichment.last_successful_run or (
            self.history.last_success(node) if self.history else None
        )
        enrichment = draft.enrichment.model_copy(
            update={"existing_ticket": existing.link if existing else None, "last_successful_run": last}
        )
        draft = draft.model_copy(update={"enrichment": enrichment})
        body = render_description(draft)
        if existing is not None:
            self.backend.comment(existing.key, f"{draft.summary}\n\n{body}", author)
            ticket, created = existing, False
        else:
            ticket, created = self.backend.create(draft, body), True
        attachment = None
        if bundle is not None:
            size = bundle.stat().st_size
            if size > MAX_BUNDLE_BYTES:
                self.backend.comment(
                    ticket.key, f"bundle {bundle.name} ({size} bytes) too large; kept at {bundle}", author
                )
            else:
                attachment = self.backend.attach(ticket.key, bundle.name, bundle.read_bytes())
        return Filed(ticket, created, attachment)

    def close(self, key: str, resolution: str, actor: str, initiator: Initiator) -> None:
        """Close a ticket; refused (Refused) unless a named human asks."""
        self.backend.close(key, resolution, HumanCloser.of(actor, initiator))
