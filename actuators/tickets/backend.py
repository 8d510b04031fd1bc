"""The ticket tracker seam, and the rule that only a person closes a ticket.

The agents' autonomy rule: agents may create and update incidents, closing needs a human. The rule
lives in the types: a backend's ``close`` takes a :class:`HumanCloser`, and the only way to make one
is :meth:`HumanCloser.of`, which refuses agents and automation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from actuators.base import Refused
from actuators.tickets.model import Attachment, Initiator, Ticket, TicketDraft


@dataclass(frozen=True)
class HumanCloser:
    actor: str

    @classmethod
    def of(cls, actor: str, initiator: Initiator) -> HumanCloser:
        if initiator != "human":
            raise Refused(f"closing a ticket needs a human; {actor!r} is {initiator}")
        if not actor.strip():
            raise Refused("closing a ticket needs a named person")
        return cls(actor)


class TicketBackend(Protocol):
    def find_open(self, node: str) -> Ticket | None:
        """The open ticket for ``node`` (newest first), if any."""
        ...

    def recent(self, limit: int) -> list[Ticket]:
        """The ``limit`` most recently created tickets, open or closed, newest first."""
        ...

    def get(self, key: str) -> Ticket: ...

    def create(self, draft: TicketDraft, body: str) -> Ticket: ...

    def comment(self, key: str, body: str, author: str) -> None: ...

    def attach(self, key: str, name: str, content: bytes) -> Attachment: ...

    def close(self, key: str, resolution: str, by: HumanCloser) -> None: ...
