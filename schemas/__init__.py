"""The public contracts of gpu-breakfix: every message that crosses a topic, a file or the API.

Producers and consumers code against these models (and the JSON Schema exported from them into
``schemas/json/``), so this package is pure: pydantic and the standard library only.
"""

from schemas.actions import ActionRequest
from schemas.common import SCHEMA_VERSION, FailureDomain, NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.decision import ActionKind, Decision, GuardCheck, Mode
from schemas.events import EVENT_TYPES, Event, event_type_of
from schemas.evidence import Evidence

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "ActionKind",
    "ActionRequest",
    "ControlKind",
    "ControlMessage",
    "DeadLetter",
    "DeadLetterReason",
    "Decision",
    "Event",
    "Evidence",
    "FailureDomain",
    "GuardCheck",
    "Mode",
    "NodeState",
    "event_type_of",
]
