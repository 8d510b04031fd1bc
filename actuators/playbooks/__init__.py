"""Playbook catalog: repair procedures as versioned YAML data (``catalog/``), a pydantic model, a loader."""

from actuators.playbooks.loader import Catalog, PlaybookError, load_catalog, parse_playbook
from actuators.playbooks.model import Approval, Playbook, Preconditions
from schemas.vocab import FailureClass

__all__ = [
    "Approval",
    "Catalog",
    "FailureClass",
    "Playbook",
    "PlaybookError",
    "Preconditions",
    "load_catalog",
    "parse_playbook",
]
