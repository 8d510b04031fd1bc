"""The built-in ticket store: tickets as JSON files, attachments beside them. For sites without Jira,
and for the demo; ``link`` is a file URL a person can open."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from actuators.base import PermanentError
from actuators.tickets.backend import HumanCloser
from actuators.tickets.model import Attachment, Comment, Ticket, TicketDraft, node_label

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class JsonTicketStore:
    def __init__(self, root: Path, prefix: str = "BF") -> None:
        self.root = Path(root)
        self.prefix = prefix
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not re.fullmatch(rf"{self.prefix}-\d+", key):
            raise PermanentError(f"no ticket {key!r} in the built-in store")
        return self.root / f"{key}.json"

    def _save(self, ticket: Ticket) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            f.write(ticket.model_dump_json(indent=2))
        os.replace(tmp, self._path(ticket.key))

    def _all(self) -> list[Ticket]:
        return [Ticket.model_validate_json(p.read_bytes()) for p in self.root.glob(f"{self.prefix}-*.json")]

    def get(self, key: str) -> Ticket:
        path = self._path(key)
        if not path.exists():
            raise PermanentError(f"no ticket {key!r} in the built-in store")
        return Ticket.model_validate_json(path.read_bytes())

    def find_open(self, node: str) -> Ticket | None:
        mine = [t for t in self._all() if t.node == node and t.status == "open"]
        return max(mine, key=lambda t: int(t.key.split("-")[1]), default=None)

    def recent(self, limit: int) -> list[Ticket]:
        return sorted(self._all(), key=lambda t: int(t.key.split("-")[1]), reverse=True)[:limit]

    def create(self, draft: TicketDraft, body: str) -> Ticket:
        n = 1 + max((int(t.key.split("-")[1]) for t in self._all()), default=0)
        key = f"{self.prefix}-{n}"
        ticket = Ticket(
            key=key,
            link=(self.root / f"{key}.json").resolve().as_uri(),
            node=draft.enrichment.node,
            summary=draft.summary,
            description=body,
            labels=[node_label(draft.enrichment.node), *draft.labels],
            decision_id=draft.decision_id,
        )
        self._save(ticket)
        return ticket

    def comment(self, key: str, body: str, author: str) -> None:
        t = self.get(key)
        t.comments.append(Comment(author=author, body=body, at=datetime.now(UTC)))
        self._save(t)

    def attach(self, key: str, name: str, content: bytes) -> Attachment:
        t = self.get(key)
        safe = _SAFE_NAME.sub("_", Path(name).name) or "attachment"
        folder = self.root / key
        folder.mkdir(exist_ok=True)
        (folder / safe).write_bytes(content)
        att = Attachment(name=safe, size=len(content), sha256=hashlib.sha256(content).hexdigest())
        t.attachments.append(att)
        self._save(t)
        return att

    def close(self, key: str, resolution: str, by: HumanCloser) -> None:
        t = self.get(key)
        t.status, t.closed_by, t.resolution = "closed", by.actor, resolution
        self._save(t)
