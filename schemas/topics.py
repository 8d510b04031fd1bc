"""Topic catalogue: names, partition counts, keys and retention - part of the public contract."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Topic(StrEnum):
    """Every topic's name, spelled once. A deployment may prefix them all (``StreamSettings.topic``)."""

    EVENTS = "breakfix.events"
    DEADLETTER = "breakfix.deadletter"
    EVIDENCE = "breakfix.evidence"
    PROPOSALS = "breakfix.proposals"
    DECISIONS = "breakfix.decisions"
    COMMANDS = "breakfix.commands"
    AUDIT = "breakfix.audit"
    CONTROL = "breakfix.control"


@dataclass(frozen=True)
class TopicSpec:
    name: Topic
    partitions: int
    key: str
    compacted: bool
    schema: str
    """File in schemas/json/ describing each message."""
    doc: str


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        Topic.EVENTS,
        12,
        "node id (empty for fleet-wide events)",
        False,
        "event",
        "All telemetry, tenant reports, repair status, heartbeats and action results.",
    ),
    TopicSpec(
        Topic.DEADLETTER,
        1,
        "node id or empty",
        False,
        "dead-letter",
        "Rejected input with reason, message and raw payload.",
    ),
    TopicSpec(Topic.EVIDENCE, 12, "node id", False, "evidence", "Evidence items from the node stage."),
    TopicSpec(
        Topic.PROPOSALS,
        1,
        "node id",
        False,
        "proposal",
        "Transition proposals; one partition so the guard is a single writer.",
    ),
    TopicSpec(
        Topic.DECISIONS,
        12,
        "node id",
        False,
        "decision",
        "One decision per node-state transition (actuators' idempotency key: decision id).",
    ),
    TopicSpec(
        Topic.COMMANDS, 12, "node id", False, "action-request", "Commands to node agents and actuators."
    ),
    TopicSpec(Topic.AUDIT, 1, "actor", False, "audit", "Every API/CLI/MCP call and control change."),
    TopicSpec(
        Topic.CONTROL,
        1,
        "kind:scope",
        True,
        "control",
        "Kill switch, approvals, modes, breaker reset, emergency mode, exclusions (compacted).",
    ),
)

TOPIC_BY_NAME = {t.name: t for t in TOPICS}
