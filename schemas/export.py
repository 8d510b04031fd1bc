"""JSON Schema per topic, generated from the models: the document producers validate against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.actions import ActionRequest
from schemas.audit import AuditRecord
from schemas.control import ControlMessage
from schemas.deadletter import DeadLetter
from schemas.decision import Decision
from schemas.events import EVENT_MODELS, Event
from schemas.evidence import Evidence
from schemas.proposal import Proposal

JSON_DIR = Path(__file__).parent / "json"


def _doc(title: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://gpu-breakfix.dev/schemas/{title}.json",
        "title": title,
        "description": description,
        **schema,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema document. Event types get one file each plus the union."""
    out: dict[str, dict[str, Any]] = {
        "event": _doc(
            "event",
            TypeAdapter(Event).json_schema(),
            "Any telemetry event (topic breakfix.events): one object, discriminated on 'type'.",
        ),
    }
    for type_name, event_model in EVENT_MODELS.items():
        out[f"event.{type_name}"] = _doc(
            f"event.{type_name}", event_model.model_json_schema(), f"The '{type_name}' event."
        )
    singles: dict[str, tuple[type[BaseModel], str]] = {
        "decision": (Decision, "A decision (topic breakfix.decisions): one per node-state transition."),
        "evidence": (Evidence, "An evidence item (topic breakfix.evidence)."),
        "action-request": (
            ActionRequest,
            "A command to an actuator or node agent (topic breakfix.commands).",
        ),
        "proposal": (
            Proposal,
            "A transition proposal from the node stage to the guard (topic breakfix.proposals).",
        ),
        "audit": (AuditRecord, "An audit record (topic breakfix.audit)."),
        "control": (ControlMessage, "A control message (compacted topic breakfix.control)."),
        "dead-letter": (DeadLetter, "A rejected input with its reason (topic breakfix.deadletter)."),
    }
    for name, (model, desc) in singles.items():
        out[name] = _doc(name, model.model_json_schema(), desc)
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        p = directory / f"{name}.json"
        p.write_text(render(schema))
        written.append(p)
    return written
