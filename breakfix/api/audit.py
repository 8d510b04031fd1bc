"""Every API call, allowed or refused, becomes one :class:`~schemas.audit.AuditRecord`: written to
the store's ``audit`` table (so ``GET /audit`` and SQL see it at once) and to the audit topic (so the
rest of the pipeline and any external SIEM do). ``params.cli`` is the equivalent ``breakfix`` command
line, so an operator can replay what an agent did.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from breakfix.api.ports import Publisher
from schemas.audit import AuditRecord
from store.base import Store
from store.rows import COLUMNS, audit_row

log = logging.getLogger(__name__)
Surface = Literal["api", "cli", "mcp"]


@dataclass(frozen=True)
class CallFacts:
    """What the API knows about a call when it answers it."""

    actor: str
    role: str
    initiator: Literal["human", "agent", "automation"]
    surface: Surface
    operation: str
    method: str
    path: str
    body: bytes
    status: int
    detail: str
    cli: str


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest() if body else ""


class AuditLog:
    def __init__(
        self, store: Store | None, publisher: Publisher | None, topic: str, lock: threading.Lock | None = None
    ) -> None:
        self.store, self.publisher, self.topic = store, publisher, topic
        self.lock = lock or threading.Lock()

    def record(self, facts: CallFacts, now: datetime) -> AuditRecord:
        params: dict[str, Any] = {
            "method": facts.method,
            "path": facts.path,
            "body_sha256": body_hash(facts.body),
            "cli": facts.cli,
        }
        rec = AuditRecord(
            id=f"api-{uuid.uuid4().hex}",
            time=now,
            actor=facts.actor,
            role=facts.role,
            initiator=facts.initiator,
            surface=facts.surface,
            action=facts.operation,
            target=facts.path,
            allowed=facts.status < 400,
            status=facts.status,
            detail=facts.detail[:2000],
            params=params,
        )
        if self.store is not None:
            with self.lock:
                self.store.insert("audit", COLUMNS["audit"], [audit_row(rec)])
        if self.publisher is not None:
            try:
                self.publisher.publish(self.topic, rec.actor, rec.model_dump_json().encode())
            except Exception as err:  # the store row is the record of truth; the topic is a copy
                log.warning("audit record %s not published: %s", rec.id, err)
        return rec
