"""The one vocabulary: every consumer accepts the same failure classes, scopes and topic names, and no
module retypes a word the vocabulary spells."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from actuators.playbooks import FailureClass as PlaybookClass
from breakfix.api.routes_control import ModeChange
from breakfix.demo import summary
from breakfix.report import sql as report_sql
from policy.model import load_policy, parse_policy
from schemas.control import ApprovalGrant, ControlKind, ControlMessage, ModeSetting
from schemas.topics import TOPICS, Topic
from schemas.vocab import (
    FAILURE_CLASSES,
    GLOBAL,
    OUT_OF_SERVICE,
    FailureClass,
    FailureDomain,
    Mode,
    NodeState,
    Scope,
    ScopeKind,
    Trigger,
    sql_in,
)
from sim.simulator.labels import FAILURE_CLASSES as LABEL_CLASSES
from store import queries

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("schemas", "detectors", "policy", "store", "streams", "actuators", "agents", "sim", "breakfix")
T = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_domain_is_a_class_and_a_fleet_incident_is_an_action_not_a_class() -> None:
    assert {d.value for d in FailureDomain} < set(FAILURE_CLASSES)
    assert set(FAILURE_CLASSES) - {d.value for d in FailureDomain} == {"tenant_report", "change_regression"}
    assert "fleet_incident" not in FAILURE_CLASSES
    assert PlaybookClass is FailureClass and LABEL_CLASSES is FAILURE_CLASSES


def test_policy_and_api_refuse_a_class_the_vocabulary_lacks() -> None:
    raw = load_policy().model_dump(mode="json")
    raw["modes"]["classes"] = {"fleet_incident": "recommend"}
    with pytest.raises(ValueError, match="unknown failure class"):
        parse_policy(raw)
    with pytest.raises(ValidationError):
        ModeChange.model_validate({"failure_class": "fleet_incident", "mode": "shadow", "reason": "x"})
    for fc in FailureClass:
        ModeChange.model_validate({"failure_class": fc.value, "mode": "shadow", "reason": "x"})


@pytest.mark.parametrize("text", ["global", "pool:train", "class:gpu_memory", "node:gpu-01", "decision:d-1"])
def test_scope_round_trips_through_its_wire_form(text: str) -> None:
    assert str(Scope.parse(text)) == text


@pytest.mark.parametrize("text", ["", "rack:r1", "pool:", "global:x", "pool", "proposal:p-1"])
def test_a_scope_outside_the_vocabulary_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        Scope.parse(text)


def lever(kind: ControlKind, scope: str, **value: object) -> ControlMessage:
    return ControlMessage(id="c", time=T, kind=kind, scope=scope, value=dict(value), actor="ann")


def test_control_messages_carry_typed_scopes_and_payloads() -> None:
    mode = lever(ControlKind.MODE, "class:gpu_memory", mode="auto")
    assert mode.target == Scope.failure_class("gpu_memory") and mode.payload == ModeSetting(mode="auto")
    grant = lever(ControlKind.APPROVAL, "decision:d-7", node="n1", action="rma", failure_class="gpu_memory")
    assert grant.target.kind is ScopeKind.DECISION
    assert isinstance(grant.payload, ApprovalGrant) and grant.payload.approved
    assert lever(ControlKind.KILLSWITCH, "global").target == GLOBAL


@pytest.mark.parametrize(
    ("kind", "scope", "value", "why"),
    [
        (ControlKind.KILLSWITCH, "class:gpu_memory", {}, "applies to"),
        (ControlKind.MODE, "class:fleet_incident", {"mode": "auto"}, "FailureClass"),
        (ControlKind.MODE, "class:gpu_memory", {}, "mode"),
        (ControlKind.MODE, "class:gpu_memory", {"mode": "yolo"}, "mode"),
        (ControlKind.APPROVAL, "proposal:p-1", {}, "unknown scope"),
        (ControlKind.EXCLUSION, "rack:r1", {}, "unknown scope"),
        (ControlKind.KILLSWITCH, "global", {"on": "maybe"}, "on"),
        (ControlKind.BREAKER_RESET, "global", {"backlog": "forget"}, "backlog"),
    ],
)
def test_a_lever_that_does_not_fit_its_kind_is_refused_at_parse(
    kind: ControlKind, scope: str, value: dict[str, object], why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        lever(kind, scope, **value)


def test_topic_catalogue_names_every_topic_once() -> None:
    assert [t.name for t in TOPICS] == list(Topic)


def test_no_module_retypes_a_topic_name() -> None:
    """Product code names topics through ``schemas.topics.Topic``; only the catalogue spells them."""
    names = "|".join(re.escape(t.value) for t in Topic)
    spelled = re.compile(f"[\"'](?:{names})[\"']")
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for top in (*PRODUCT, "bench")
        for p in sorted((ROOT / top).rglob("*.py"))
        if p.name != "topics.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert found == []


def test_sql_names_out_of_service_states_from_the_vocabulary() -> None:
    expected = sql_in(OUT_OF_SERVICE)
    assert expected == "('Quarantined', 'Repairing', 'Validating')"
    assert report_sql.REMOVED == summary.REMOVED == queries.REMOVED_STATES == expected
    assert NodeState.ESCALATED not in OUT_OF_SERVICE


def test_product_sql_names_states_modes_and_triggers_through_the_vocabulary() -> None:
    """Queries write ``${NodeState.HEALTHY}`` (rendered by ``schemas.vocab.sql``), never ``'Healthy'``;
    migrations already applied to stores keep their text (their checksum is recorded)."""
    words = {m.value for e in (NodeState, Mode, Trigger) for m in e}
    alternatives = "|".join(sorted(words))
    quoted = re.compile(f"'({alternatives})'")
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for top in PRODUCT
        for p in sorted((ROOT / top).rglob("*.py"))
        if p.name != "vocab.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if quoted.search(line)
    ]
    assert found == []
