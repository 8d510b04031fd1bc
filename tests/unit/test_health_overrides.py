"""NICo FAQ Q1-Q5 (NICo's repair manual), one test each, through release events on a real JSON machine store.

Each test states the FAQ's "What happens" bullets as assertions: which overrides are present, whether
the machine is allocatable, and whether auto-repair may trigger again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actuators.base import Refused, StepContext, StepSpec
from actuators.health import HealthOverrideActuator, JsonMachineStore, OverrideKind, rules
from schemas.events import RepairStatus, RepairStatusData, TenantReport, TenantReportData

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TRI = OverrideKind.TENANT_REPORTED_ISSUE
REPAIR = OverrideKind.REPAIR_REQUEST
OUT = OverrideKind.OUT_FOR_REPAIR


def report(minute: int, summary: str = "ECC errors on GPU 2", node: str = "m1") -> TenantReport:
    return TenantReport(
        id=f"tr-{minute}",
        source="nico",
        time=T0 + timedelta(minutes=minute),
        node=node,
        data=TenantReportData(instance_id="i-1", category="HARDWARE", summary=summary),
    )


def release(minute: int, status: str | None, node: str = "m1") -> RepairStatus:
    return RepairStatus(
        id=f"rs-{minute}",
        source="repair-tenant",
        time=T0 + timedelta(minutes=minute),
        node=node,
        data=RepairStatusData(repair_status=status, repair_details="reseated GPU", instance_id="r-1"),
    )


class Open:
    def killswitch_on(self, pool: str | None) -> bool:
        return False

    def excluded(self, node: str, pool: str | None) -> bool:
        return False


def ctx(approved: bool = False) -> StepContext:
    return StepContext(
        decision_id="d-9",
        node="m1",
        step="repair",
        playbook="p",
        playbook_version="1",
        safety=Open(),
        deadline=time.monotonic() + 5,
        approved=approved,
    )


@pytest.fixture
def store(tmp_path: Path) -> JsonMachineStore:
    return JsonMachineStore(tmp_path / "machines")


def kinds(store: JsonMachineStore, node: str = "m1") -> set[OverrideKind]:
    rec = store.get(node)
    assert rec is not None
    return set(rec.overrides)


def test_q1_auto_repair_disabled_applies_only_tenant_reported_issue(store: JsonMachineStore) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=False)
    outcome = act.on_event(report(0))
    assert kinds(store) == {TRI}, "issue documented, no automatic repair-request"
    assert not outcome.available
    assert any("manual intervention" in n for n in outcome.notes)
    rec = store.get("m1")
    assert rec is not None and rec.issues[0].summary == "ECC errors on GPU 2"
    # The FAQ's resolution: a person requests the repair by hand.
    manual = rules.add_override(rec, REPAIR, "operator:alice", "manual repair trigger", T0)
    assert set(manual.record.overrides) == {TRI, REPAIR}
    assert manual.record.overrides[REPAIR].source == "operator:alice"


def test_q2_unclaimed_repair_request_stays_in_limbo(store: JsonMachineStore) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=True)
    outcome = act.on_event(report(0))
    assert kinds(store) == {TRI, REPAIR}
    assert not outcome.available
    rec = store.get("m1")
    assert rec is not None
    assert not rules.in_limbo(rec, T0 + timedelta(minutes=30), max_wait=timedelta(hours=1))
    assert rules.in_limbo(rec, T0 + timedelta(hours=2), max_wait=timedelta(hours=1))
    # A second report while waiting does not raise a second repair-request.
    again = act.on_event(report(5, "still broken"))
    assert REPAIR not in again.applied and kinds(store) == {TRI, REPAIR}
    claimed = rules.claim(rec, "repair-instance-7", T0 + timedelta(hours=2))
    assert not rules.in_limbo(claimed, T0 + timedelta(hours=3), max_wait=timedelta(hours=1))


def test_q3_released_as_fixed_with_new_issue_stays_out_and_never_auto_repairs_again(
    store: JsonMachineStore,
) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=True)
    act.on_event(report(0))
    # The repair tenant finds the problem persists and reports it while releasing "fixed".
    act.on_event(report(40, "GPU 2 still throws Xid 48"))
    outcome = act.on_event(release(41, "Completed"))
    assert REPAIR in outcome.removed
    assert kinds(store) == {TRI}, "new issues re-apply tenant-reported-issue; repair-request is gone"
    assert not outcome.available and outcome.escalate
    assert "Xid 48" in store.get("m1").overrides[TRI].message  # type: ignore[union-attr]
    # Another tenant report on the same problem must not trigger auto-repair again.
    later = act.on_event(report(50, "tenant sees it too"))
    assert REPAIR not in later.applied and kinds(store) == {TRI}
    assert any("not triggered again" in n for n in later.notes)
    with pytest.raises(Refused, match="a person must request"):
        act.execute(
            StepSpec(
                name="r",
                actuator="health_override",
                operation="set",
                mutating=True,
                timeout_s=5,
                params={"override": "repair-request"},
            ),
            ctx(),
        )


def test_q3_released_as_fixed_without_new_issues_returns_to_pool(store: JsonMachineStore) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=True)
    act.on_event(report(0))
    outcome = act.on_event(release(30, "Completed"))
    assert outcome.available and kinds(store) == set()


def test_q4_completed_removes_both_overrides_and_machine_is_available(store: JsonMachineStore) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=True)
    act.on_event(report(0))
    outcome = act.on_event(release(60, "Completed"))
    assert set(outcome.removed) == {REPAIR, TRI}
    assert outcome.available and not outcome.escalate
    rec = store.get("m1")
    assert rec is not None and rec.labels["repair_status"] == "Completed" and not rec.auto_repair_used
    # Healthy again: a fresh problem later may be auto-repaired once more.
    assert REPAIR in act.on_event(report(600, "new fault")).applied


@pytest.mark.parametrize("status", [None, "Failed", "InProgress", "Done!"])
def test_q5_release_without_completed_is_a_failed_repair(store: JsonMachineStore, status: str | None) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=True)
    act.on_event(report(0))
    outcome = act.on_event(release(45, status))
    assert REPAIR in outcome.removed
    assert kinds(store) == {TRI}, "tenant-reported-issue applied or updated; repair-request removed"
    assert not outcome.available and outcome.escalate
    assert f"repair_status={status or 'missing'}" in store.get("m1").overrides[TRI].message  # type: ignore[union-attr]
    assert REPAIR not in act.on_event(report(50)).applied, "auto-repair is not triggered again"


def test_automation_lifts_only_overrides_it_set(store: JsonMachineStore) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=False)
    act.on_event(report(0))
    rec = store.get("m1")
    assert rec is not None
    store.put(rules.add_override(rec, OUT, "operator:bob", "vendor RMA 1234", T0).record)
    spec = StepSpec(name="c", actuator="health_override", operation="clear", mutating=True, timeout_s=5)
    result = act.execute(spec, ctx())
    assert result.changed and kinds(store) == {OUT}, "ours lifted, the operator's out-for-repair kept"
    with pytest.raises(Refused, match="operator:bob"):
        act.execute(spec.model_copy(update={"params": {"override": "out-for-repair"}}), ctx())
    assert kinds(store) == {OUT}
    # A person may lift it; the machine is then available and the no-loop memory resets.
    lifted = rules.remove_override(store.get("m1"), OUT, by_human=True)  # type: ignore[arg-type]
    assert lifted.available and not lifted.record.auto_repair_used


def test_a_release_without_repair_request_changes_nothing(store: JsonMachineStore) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=False)
    act.on_event(report(0))
    outcome = act.on_event(release(10, "Completed"))
    assert kinds(store) == {TRI} and not outcome.removed and "ignored" in outcome.notes[0]


def test_escalate_applies_out_for_repair_once(store: JsonMachineStore) -> None:
    act = HealthOverrideActuator(store, auto_repair_enabled=True)
    spec = StepSpec(
        name="e",
        actuator="health_override",
        operation="set",
        mutating=True,
        timeout_s=5,
        params={"override": "out-for-repair"},
    )
    assert act.execute(spec, ctx()).changed
    assert not act.execute(spec, ctx()).changed
    assert kinds(store) == {OUT} and act.owns("m1")
