"""Tickets: enriched incidents in a built-in store or Jira; closing needs a human."""

from actuators.tickets.actuator import TicketActuator
from actuators.tickets.backend import HumanCloser, TicketBackend
from actuators.tickets.jira import JiraBackend
from actuators.tickets.model import Enrichment, PlaybookRun, Ticket, TicketDraft
from actuators.tickets.service import TicketService
from actuators.tickets.store import JsonTicketStore

__all__ = [
    "Enrichment",
    "HumanCloser",
    "JiraBackend",
    "JsonTicketStore",
    "PlaybookRun",
    "Ticket",
    "TicketActuator",
    "TicketBackend",
    "TicketDraft",
    "TicketService",
]
