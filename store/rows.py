"""Pure mapping of every contract message to table rows: no I/O, deterministic, easy to unit-test.

Each table's columns are declared once in :data:`COLUMNS`; each ``*_row`` function returns a tuple
in that order. Kafka messages arrive as bytes, so :func:`rows_for_message` maps a topic's raw value
(never raising: what does not parse becomes a dead-letter row that says why). The telemetry topic
is mapped from the JSON envelope directly instead of a full pydantic parse: it is by far the
largest stream, the node stage already judges it (its verdicts are in ``dead_letters``), and the
audit store keeps what was published, as published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from schemas.actions import ActionRequest
from schemas.audit import AuditRecord
from schemas.control import ControlMessage
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.decision import Decision
from schemas.events import Envelope, event_type_of
from schemas.evidence import Evidence
from schemas.proposal import Proposal
from schemas.signing import Keyring
from schemas.topics import Topic
from streams.signed_input import read_lever

Row = tuple[Any, ...]
TableRow = tuple[str, Row]

COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("id", "time", "type", "source", "node", "replay", "data"),
    "dead_letters": (
        "id", "time", "reason", "message", "raw", "event_id", "event_type", "node", "source",
    ),
    "evidence": (
        "id", "time", "node", "gpu", "domain", "signal", "weight", "half_life_s", "decisive", "source",
        "event_ids", "attribution", "detail",
    ),
    "proposals": (
        "id", "time", "node", "gpu", "from_state", "to_state", "trigger", "failure_class", "domain",
        "confidence", "action", "reasons", "evidence", "evidence_time", "pool", "rack", "sku", "gpus",
        "job", "replay",
    ),
    "decisions": (
        "id", "time", "node", "gpu", "from_state", "to_state", "trigger", "failure_class", "confidence",
        "action", "mode", "executable", "reasons", "evidence", "guard", "guard_failed", "policy_version",
        "incident_id", "stale", "replay",
    ),
    "actions": (
        "id", "time", "kind", "decision_id", "node", "gpu", "action", "step", "status", "validation",
        "initiator", "playbook", "playbook_version", "pre_state", "post_state", "detail", "params", "replay",
    ),
    "audit": (
        "id", "time", "actor", "role", "initiator", "surface", "action", "target", "allowed", "status",
        "detail", "params",
    ),
    "control": (
        "id", "time", "kind", "scope", "key", "value", "actor", "role", "reason", "log_partition",
        "log_offset",
    ),
}  # fmt: skip


def _json(obj: Any) -> str:
    return orjson.dumps(obj, default=str, option=orjson.OPT_SORT_KEYS).decode()


def _time(value: Any) -> datetime:
    """RFC 3339 with an offset → aware UTC datetime; anything else raises ValueError."""
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str):
        t = datetime.fromisoformat(value)
    else:
        raise ValueError(f"time must be an RFC 3339 string, got {type(value).__name__}")
    if t.tzinfo is None:
        raise ValueError("time has no UTC offset")
    return t.astimezone(UTC)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


# --- telemetry ---------------------------------------------------------------------------------


def event_rows_from_dict(obj: Any) -> list[TableRow]:
    """One envelope dict → its ``events`` row (and an ``actions`` row for ``action.result``).

    Raises ValueError when the envelope itself is unusable (no id/type/time): the caller
    dead-letters it.
    """
    if not isinstance(obj, dict):
        raise ValueError("message is not a JSON object")
    eid, etype = obj.get("id"), obj.get("type")
    if not isinstance(eid, str) or not eid or not isinstance(etype, str) or not etype:
        raise ValueError("envelope needs string 'id' and 'type'")
    t = _time(obj.get("time"))
    node = _str(obj.get("node"))
    data = obj.get("data")
    replay = bool(obj.get("replay", False))
    out: list[TableRow] = [("events", (eid, t, etype, _str(obj.get("source")), node, replay, _json(data)))]
    if etype == "action.result" and isinstance(data, dict):
        out.append(("actions", _result_row(eid, t, node, data, replay)))
    return out


def _result_row(eid: str, t: datetime, node: str, d: dict[str, Any], replay: bool) -> Row:
    gpu = d.get("gpu")
    return (
        eid, t, "result", _str(d.get("decision_id")), node, gpu if isinstance(gpu, int) else None,
        _str(d.get("action")), _str(d.get("step")), _str(d.get("status")), _str(d.get("validation")),
        _str(d.get("initiator") or "automation"), _str(d.get("playbook")), _str(d.get("playbook_version")),
        _str(d.get("pre_state")), _str(d.get("post_state")), _str(d.get("detail")), "{}", replay,
    )  # fmt: skip


def event_rows(event: Envelope) -> list[TableRow]:
    """A typed event (offline replay) → the same rows the sink writes for its JSON."""
    obj = event.model_dump(mode="json", exclude_none=True)
    obj["type"] = event_type_of(event)
    return event_rows_from_dict(obj)


# --- pipeline records --------------------------------------------------------------------------


def dead_letter_id(dl: DeadLetter) -> str:
    """Dead letters carry no id: the same rejected payload and verdict always hashes the same."""
    h = hashlib.sha256(f"{dl.reason.value}\0{dl.source}\0{dl.raw}".encode())
    return "dl-" + h.hexdigest()[:24]


def dead_letter_row(dl: DeadLetter, received: datetime) -> Row:
    return (
        dead_letter_id(dl), received.astimezone(UTC), dl.reason.value, dl.message, dl.raw,
        _str(dl.event_id), _str(dl.event_type), _str(dl.node), dl.source,
    )  # fmt: skip


def evidence_row(e: Evidence) -> Row:
    return (
        e.id, e.time.astimezone(UTC), e.node, e.gpu, e.domain.value, e.signal, e.weight, e.half_life_s,
        e.decisive, e.source, list(e.event_ids), e.attribution, e.detail,
    )  # fmt: skip


def proposal_row(p: Proposal) -> Row:
    return (
        p.id, p.time.astimezone(UTC), p.node, p.gpu, p.from_state.value, p.to_state.value, p.trigger,
        p.failure_class, p.domain.value if p.domain else "", p.confidence, p.action.value,
        list(p.reasons), list(p.evidence), p.evidence_time.astimezone(UTC), p.placement.pool,
        p.placement.rack, p.placement.sku, p.placement.gpus, _str(p.job), p.replay,
    )  # fmt: skip


def decision_row(d: Decision) -> Row:
    """Guard checks are kept whole as JSON (auditors read the figures); failed names are a column."""
    guard = _json([g.model_dump(mode="json") for g in d.guard])
    return (
        d.id, d.time.astimezone(UTC), d.node, d.gpu, d.from_state.value, d.to_state.value, d.trigger,
        d.failure_class, d.confidence, d.action.value, d.mode.value, d.executable, list(d.reasons),
        list(d.evidence), guard, [g.name for g in d.guard if not g.passed], d.policy_version,
        _str(d.incident_id), d.stale, d.replay,
    )  # fmt: skip


def action_request_row(a: ActionRequest) -> Row:
    p = a.params
    return (
        a.id, a.time.astimezone(UTC), "request", a.decision_id, a.node, a.gpu, a.action, a.step,
        "requested", "", a.initiator, a.playbook, a.playbook_version, _str(p.get("pre_state")),
        _str(p.get("post_state")), "", _json(p), a.replay,
    )  # fmt: skip


def audit_row(a: AuditRecord) -> Row:
    return (
        a.id, a.time.astimezone(UTC), a.actor, a.role, a.initiator, a.surface, a.action, a.target,
        a.allowed, a.status, a.detail, _json(a.params),
    )  # fmt: skip


def control_rows(c: ControlMessage, partition: int = -1, offset: int = -1) -> list[TableRow]:
    """A control change is both a lever (``control``) and an audited act (``audit``). ``partition``
    and ``offset``: its position in the control topic (-1 when unknown), by which readers order it."""
    t = c.time.astimezone(UTC)
    return [
        (
            "control",
            (
                c.id, t, c.kind.value, c.scope, c.key, _json(c.value), c.actor, c.role, c.reason,
                partition, offset,
            ),
        ),
        (
            "audit",
            (
                c.id, t, c.actor, c.role, "human" if c.role != "automation" else "automation", "control",
                c.kind.value, c.scope, True, None, c.reason, _json(c.value),
            ),
        ),
    ]  # fmt: skip


def model_rows(obj: BaseModel, received: datetime | None = None) -> list[TableRow]:
    """Any contract model → its rows. ``received`` stamps dead letters (they carry no time)."""
    if isinstance(obj, Envelope):
        return event_rows(obj)
    if isinstance(obj, Decision):
        return [("decisions", decision_row(obj))]
    if isinstance(obj, Evidence):
        return [("evidence", evidence_row(obj))]
    if isinstance(obj, Proposal):
        return [("proposals", proposal_row(obj))]
    if isinstance(obj, ActionRequest):
        return [("actions", action_request_row(obj))]
    if isinstance(obj, AuditRecord):
        return [("audit", audit_row(obj))]
    if isinstance(obj, ControlMessage):
        return control_rows(obj)
    if isinstance(obj, DeadLetter):
        return [("dead_letters", dead_letter_row(obj, received or datetime.now(UTC)))]
    raise TypeError(f"no table for {type(obj).__name__}")


# --- Kafka messages ------------------------------------------------------------------------------

_MODELS: dict[str, type[BaseModel]] = {
    Topic.DEADLETTER: DeadLetter,
    Topic.EVIDENCE: Evidence,
    Topic.PROPOSALS: Proposal,
    Topic.DECISIONS: Decision,
    Topic.COMMANDS: ActionRequest,
    Topic.AUDIT: AuditRecord,
    Topic.CONTROL: ControlMessage,
}
EVENTS_TOPIC = Topic.EVENTS


def log_position(source: str) -> tuple[int, int]:
    """(partition, offset) from a ``topic/partition@offset`` source; (-1, -1) when it names none.

    >>> log_position("breakfix.control/0@42")
    (0, 42)
    >>> log_position("file.jsonl:3")
    (-1, -1)
    """
    head, _, offset = source.rpartition("@")
    partition = head.rpartition("/")[2]
    if not (offset.isdigit() and partition.isdigit()):
        return -1, -1
    return int(partition), int(offset)


def unparseable_row(raw: bytes, reason: str, message: str, source: str, received: datetime) -> Row:
    text = raw.decode("utf-8", errors="replace")
    h = hashlib.sha256(f"{reason}\0{source}\0{text}".encode()).hexdigest()[:24]
    return ("dl-" + h, received.astimezone(UTC), reason, message, text, "", "", "", source)


NO_TRUST_FILE = (
    "lever not recorded: this sink has no trust file to verify it with (set BREAKFIX_KEYS_DIR or "
    "BREAKFIX_TRUSTED_KEYS_FILE to the fleet's trust file, then restart the sink)"
)


def lever_rows(raw: bytes, source: str, received: datetime, levers: Keyring | None) -> list[TableRow]:
    """A control-topic record → its lever and audit rows when the API signed it (the readers' own
    gate, :func:`streams.signed_input.read_lever`, judged at the time the broker received it, so a
    spooled batch maps the same later); a dead-letter row with the gate's reason otherwise. The
    store's ``control`` table is read back by ``GET /levers`` and seeds a restarted API's kill
    switch, so a forged lever must never become a row of it. Without a keyring (``levers`` None)
    every lever is a dead letter (``unknown_key``): nothing unverified is recorded as a lever."""
    if levers is None:
        dl = DeadLetter(reason=DeadLetterReason.UNKNOWN_KEY, message=NO_TRUST_FILE,
                        raw=raw.decode("utf-8", errors="replace"), source=source)  # fmt: skip
        return [("dead_letters", dead_letter_row(dl, received))]
    got = read_lever(raw, levers, source, received.timestamp())
    if isinstance(got, DeadLetter):
        return [("dead_letters", dead_letter_row(got, received))]
    return control_rows(got, *log_position(source))


def rows_for_message(
    topic: str, raw: bytes, source: str, received: datetime, levers: Keyring | None = None
) -> list[TableRow]:
    """A Kafka value from ``topic`` → rows. Never raises: bad input becomes a dead-letter row
    with reason ``sink_rejected`` and ``source`` = ``topic/partition@offset``. ``levers``: the
    trusted keys a control-topic record is verified with (:func:`lever_rows`)."""
    try:
        if topic == EVENTS_TOPIC:
            return event_rows_from_dict(orjson.loads(raw))
        model = _MODELS.get(topic)
        if model is ControlMessage:
            return lever_rows(raw, source, received, levers)
        if model is None:
            return [("dead_letters", unparseable_row(raw, "sink_rejected", f"unknown topic {topic}",
                                                     source, received))]  # fmt: skip
        return model_rows(model.model_validate_json(raw), received)
    except (ValueError, ValidationError, orjson.JSONDecodeError) as err:
        msg = str(err).splitlines()[0][:500] if str(err) else type(err).__name__
        return [("dead_letters", unparseable_row(raw, "sink_rejected", msg, source, received))]


def group_by_table(rows: Iterable[TableRow]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for table, row in rows:
        out.setdefault(table, []).append(row)
    return out
