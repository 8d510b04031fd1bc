"""Topic catalogue: names, partition counts, keys and retention - part of the public contract."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    compacted: bool
    schema: str
    """File in schemas/json/ describing each message."""
    doc: str


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "breakfix.events",
        12,
        "node id (empty for fleet-wide events)",
        False,
        "event",
        "All telemetry, tenant reports, repair status, heartbeats and action results.",
    ),
    TopicSpec(
        "breakfix.deadletter",
        1,
        "node id or empty",
        False,
        "dead-letter",
        "Rejected input with reason, message and raw payload.",
    ),
    TopicSpec("breakfix.evidence", 12, "node id", False, "evidence", "Evidence items from the node stage."),
    TopicSpec(
        "breakfix.proposals",
        1,
        "node id",
        False,
        "proposal",
        "Transition proposals; one partition so the guard is a single writer.",
    ),
    TopicSpec(
        "breakfix.decisions",
        12,
        "node id",
        False,
        "decision",
        "One decision per node-state transition (actuators' idempotency key: decision id).",
    ),
    TopicSpec(
        "breakfix.commands", 12, "node id", False, "action-request", "Commands to node agents and actuators."
    ),
    TopicSpec("breakfix.audit", 1, "actor", False, "audit", "Every API/CLI/MCP call and control change."),
    TopicSpec(
        "breakfix.control",
        1,
        "kind:scope",
        True,
        "control",
        "Kill switch, approvals, modes, breaker reset, emergency mode, exclusions (compacted).",
    ),
)

TOPIC_BY_NAME = {t.name: t for t in TOPICS}
