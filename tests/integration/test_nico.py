"""The product as NICo's repair system, against the NICo stand-in over real HTTP and gRPC.

Every exchange is validated against NICo's published OpenAPI document (NVIDIA/infra-controller
``rest-api/openapi/spec.yaml``, read from ``../shared/nico/spec.yaml``) by openapi-core inside the
stand-in; the fixture fails a test that sent or received anything the document rejects. The release
rules the stand-in applies are those of NICo's ``crates/api/src/handlers/instance.rs`` and the FAQ of
``docs/manuals/repair/`` (repair_integration.md, repair_tenant_workflow.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actuators.base import PermanentError, Refused, StepContext, TemporaryError
from actuators.dispatch import Dispatcher
from actuators.nico import NicoPoller, NicoRest
from actuators.nico.health import Alert, Report
from actuators.playbooks import load_catalog
from actuators.simulated import SimFault, SimulatedFleet, simulated_actuators
from actuators.workflow import Journal, WorkflowEngine
from schemas.decision import ActionKind
from schemas.events import TenantReport
from tests.fakes.nico_server import FakeNico
from tests.fakes.workflow_doubles import SwitchSafety, xid79_decision
from tests.fixtures.nico import REPAIR_TOKEN, NicoRig, need_spec, start

pytestmark = pytest.mark.integration
M = "fm100ht4v4mce2qstjnl8970nnj3ie6ecek4mtjn27pea4kre5gsa49jg0g"  # a machine id as NICo writes them
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


@pytest.fixture
def nico() -> Iterator[NicoRig]:
    yield from start()


@pytest.fixture
def nico_manual() -> Iterator[NicoRig]:
    yield from start(auto_repair=False)


def ctx(step: str, decision: str = "d-1", safety: SwitchSafety | None = None, **over: Any) -> StepContext:
    fields: dict[str, Any] = {
        "decision_id": decision, "node": M, "step": step, "playbook": "nico-repair",
        "playbook_version": "1.0", "safety": safety or SwitchSafety(), "deadline": time.monotonic() + 60,
        "failure_class": "gpu_hardware", "reasons": ("Xid 79 on GPU 3: GPU has fallen off the bus",),
    }  # fmt: skip
    return StepContext(**{**fields, **over})


def step(name: str, op: str, **params: Any) -> Any:
    from actuators.base import StepSpec

    return StepSpec(name=name, actuator="nico", operation=op, mutating=True, timeout_s=60, params=params)


def dispatcher(rig: NicoRig, faults: list[SimFault], tmp: Path) -> tuple[Dispatcher, list[dict[str, Any]]]:
    """The real dispatcher and workflow engine with the real nico actuator; the node agent (it runs
    in the repair image) and validation are simulated against ground truth."""
    sim = SimulatedFleet(faults, now=lambda: T0 + 120, ledger=tmp / "ledger.jsonl")
    acts = [a for a in simulated_actuators(sim) if a.name in {"node_agent", "validate", "ticket"}]
    events: list[dict[str, Any]] = []
    eng = WorkflowEngine(
        load_catalog(), [*acts, rig.actuator], Journal(":memory:"), SwitchSafety(), events.append, facts=sim
    )
    return Dispatcher(eng, events.append, now=lambda: datetime.now(UTC)), events


# --- the client against the document ------------------------------------------------------------


def test_a_request_the_document_rejects_is_refused_and_recorded() -> None:
    """The validator is live: a category NICo's document does not list is a 400 and a violation."""
    with FakeNico(need_spec()) as fake:
        fake.add_tenant(REPAIR_TOKEN, targeted=True)
        fake.add_machine(M)
        status, _, _ = fake.serve(
            "DELETE", f"/v2/org/{fake.org}/nico/instance/{uuid.uuid4()}",
            {"Authorization": f"Bearer {REPAIR_TOKEN}", "Content-Type": "application/json"},
            b'{"machineHealthIssue": {"category": "HARDWARE", "summary": "s"}}',
        )  # fmt: skip
        assert status == 400 and "HARDWARE" in fake.violations[0]


def test_paths_follow_the_configured_api_name() -> None:
    """Older deployments serve another path segment (NICo's ``api.name``): the client follows it."""
    for rig in start(api_name="carbide"):
        rig.fake.add_machine(M)
        assert rig.rest.machine(M)["id"] == M
        default = NicoRest(rig.fake.url, rig.fake.org, REPAIR_TOKEN)
        with pytest.raises(PermanentError, match="404"):
            default.machine(M)
        default.close()


def test_a_wrong_token_is_refused_with_nicos_message(nico: NicoRig) -> None:
    nico.fake.add_machine(M)
    bad = NicoRest(nico.fake.url, nico.fake.org, "not-a-jwt")
    with pytest.raises(PermanentError, match="401 Request is missing a valid JWT"):
        bad.machine(M)
    bad.close()


def test_machines_are_listed_page_by_page(nico: NicoRig) -> None:
    for i in range(205):
        nico.fake.add_machine(f"m{i:03d}")
    assert len({m["id"] for m in nico.rest.machines()}) == 205
    assert (
        sum(1 for r in nico.fake.requests if r[:2] == ("GET", f"/v2/org/{nico.fake.org}/nico/machine")) == 3
    )


# --- health reports over gRPC ---------------------------------------------------------------------


def test_evidence_goes_under_the_products_source_and_only_that_source_is_removed(nico: NicoRig) -> None:
    nico.fake.add_machine(M)
    other = Report(
        "hardware-health", (Alert("Temperature", "hot", "CPU1 Temp", None, ("PreventAllocations",)),)
    )
    nico.health.insert(M, other, "Merge")
    nico.actuator.execute(step("evidence", "push_evidence"), ctx("evidence", gpu=3))
    assert nico.actuator.execute(step("evidence", "push_evidence"), ctx("evidence", gpu=3)).changed is False
    nico.actuator.execute(step("escalate", "escalate"), ctx("escalate"))
    ours = {r.source: r for r, _ in nico.health.list(M)}["breakfix"]
    assert [(a.id, a.target) for a in ours.alerts] == [
        ("BreakfixGpuHardware", "gpu3"),
        ("Maintenance", "OutForRepair"),
    ]
    nico.actuator.execute(step("clear", "clear_evidence"), ctx("clear"))
    assert nico.fake.sources(M) == {"hardware-health"}
    assert nico.actuator.execute(step("clear", "clear_evidence"), ctx("clear")).changed is False


def test_a_killed_switch_stops_every_mutation(nico: NicoRig) -> None:
    nico.fake.add_machine(M)
    off = SwitchSafety(killswitch=True)
    for name in ("push_evidence", "request_repair", "claim"):
        with pytest.raises(Refused):
            nico.actuator.execute(step(name, name), ctx(name, safety=off))
    assert nico.fake.sources(M) == set() and nico.fake.instances == {}


# --- claim, label, release ------------------------------------------------------------------------


def test_claim_marks_in_progress_first_and_keeps_the_operators_labels(nico: NicoRig) -> None:
    """NICo's repair tenant workflow: InProgress right after the claim, so a stale Completed from an
    older attempt is never read as this one's outcome; the whole map is sent, nothing else lost."""
    nico.fake.add_machine(M, {"RackIdentifier": "GVX11F01C02", "repair_status": "Completed"})
    out = nico.actuator.execute(step("claim", "claim"), ctx("claim"))
    labels = nico.rest.machine(M)["labels"]
    assert labels == {
        "RackIdentifier": "GVX11F01C02",
        "repair_status": "InProgress",
        "repair_details": "decision d-1",
    }
    inst = nico.fake.instances[out.outputs["instance_id"]]
    assert inst["tenantId"] == nico.repair.tenant_id and inst["machineId"] == M
    again = nico.actuator.execute(step("claim", "claim"), ctx("claim"))
    assert again.changed is False and again.outputs["instance_id"] == out.outputs["instance_id"]


def test_a_machine_a_tenant_still_holds_is_waited_for_not_claimed(nico: NicoRig) -> None:
    nico.fake.add_machine(M)
    nico.fake.place(M, nico.tenant)
    with pytest.raises(TemporaryError, match="waiting for its release"):
        nico.actuator.execute(step("claim", "claim"), ctx("claim"))
    assert len(nico.fake.instances) == 1 and nico.rest.machine(M)["labels"] == {}
    nico.tenant_release(M)
    assert nico.actuator.execute(step("claim", "claim"), ctx("claim")).changed


def test_a_full_label_map_is_not_overwritten(nico: NicoRig) -> None:
    nico.fake.add_machine(M, {f"k{i}": "v" for i in range(10)})
    with pytest.raises(PermanentError, match="10"):
        nico.actuator.execute(step("claim", "claim"), ctx("claim"))
    assert nico.rest.machine(M)["labels"] == {f"k{i}": "v" for i in range(10)}


def test_a_released_issue_needs_a_summary_as_nicos_server_demands(nico: NicoRig) -> None:
    nico.fake.add_machine(M)
    inst = nico.fake.place(M, nico.repair)
    with pytest.raises(PermanentError, match="summary"):
        nico.rest.release_instance(inst, repair_tenant=True, issue={"category": "Hardware", "summary": ""})


# --- the FAQ, end to end through the dispatcher and the workflow engine ------------------------------


def tenant_released(rig: NicoRig, poll_wait_s: float = 600) -> NicoPoller:
    rig.fake.add_machine(M, {"RackIdentifier": "GVX11F01C02"})
    rig.fake.place(M, rig.tenant)
    rig.tenant_release(M)
    return NicoPoller(rig.rest, rig.health, lambda e: None, own_source=rig.cfg.source, max_wait_s=poll_wait_s)


def report_decision(event: dict[str, Any]) -> Any:
    """The guard's decision on the poller's report (the pipeline itself is driven in the e2e test)."""
    report = TenantReport.model_validate(event)
    return xid79_decision(
        M, f"d-{report.id}", gpu=None, failure_class="tenant_report", action=ActionKind.TICKET,
        from_state="Healthy", to_state="Quarantined", reasons=[report.data.summary],
    )  # fmt: skip


def test_completed_repair_clears_both_overrides_and_returns_the_machine(
    nico: NicoRig, tmp_path: Path
) -> None:
    poller = tenant_released(nico)
    assert nico.fake.sources(M) == {"tenant-reported-issue", "repair-request"}
    events, _ = poller.poll_once(T0)
    assert [(e["type"], e["data"]["category"]) for e in events] == [("tenant.report", "HARDWARE")]
    assert poller.poll_once(T0 + 60)[0] == []  # one event per repair request
    dispatch, _ = dispatcher(nico, [SimFault("f", M, start=T0, repair="gpu_reset")], tmp_path)
    handled = dispatch.handle(report_decision(events[0]))
    assert handled.verdict == "succeeded", handled.detail
    machine = nico.rest.machine(M)
    assert (
        machine["labels"]["repair_status"] == "Completed"
        and machine["labels"]["RackIdentifier"] == "GVX11F01C02"
    )
    assert nico.fake.sources(M) == set() and machine["status"] == "Ready" and machine["isUsableByTenant"]
    assert nico.fake.instances == {}


def test_fixed_but_still_broken_goes_out_for_repair_and_is_never_auto_repaired_again(
    nico: NicoRig, tmp_path: Path
) -> None:
    poller = tenant_released(nico)
    events, _ = poller.poll_once(T0)
    dispatch, _ = dispatcher(nico, [SimFault("f", M, start=T0, repair="rma")], tmp_path)
    handled = dispatch.handle(report_decision(events[0]))
    assert handled.verdict == "escalated"
    machine = nico.rest.machine(M)
    assert machine["labels"]["repair_status"] == "Failed" and nico.fake.instances == {}
    assert nico.fake.sources(M) == {"tenant-reported-issue", "breakfix"}  # repair-request consumed
    assert not machine["isUsableByTenant"]
    events, alerts = poller.poll_once(T0 + 60)
    assert events == [] and [a.kind for a in alerts] == ["out_for_repair"]


def test_auto_repair_disabled_leaves_the_tenant_override_alone_and_alerts(nico_manual: NicoRig) -> None:
    poller = tenant_released(nico_manual)
    assert nico_manual.fake.sources(M) == {"tenant-reported-issue"}
    events, alerts = poller.poll_once(T0)
    assert events == [] and [a.kind for a in alerts] == ["auto_repair_disabled"]
    assert poller.poll_once(T0 + 60) == ([], [])  # alerted once


def test_a_repair_request_nobody_claims_raises_an_alert(nico: NicoRig) -> None:
    poller = tenant_released(nico, poll_wait_s=600)
    assert len(poller.poll_once(T0)[0]) == 1
    assert poller.poll_once(T0 + 300)[1] == []
    assert [a.kind for a in poller.poll_once(T0 + 700)[1]] == ["never_picked_up"]


def test_a_release_without_a_completed_status_is_a_failed_repair(nico: NicoRig) -> None:
    """Released with repair_status still InProgress (the product stopped mid-repair, a person
    released it): NICo keeps the machine out with its fallback issue and drops repair-request."""
    tenant_released(nico)
    out = nico.actuator.execute(step("claim", "claim"), ctx("claim"))
    nico.rest.release_instance(out.outputs["instance_id"], repair_tenant=True)
    reports = {r.source: r for r, _ in nico.health.list(M)}
    assert set(reports) == {"tenant-reported-issue"}
    assert (
        reports["tenant-reported-issue"].alerts[0].fields()["summary"] == "RepairSystem processing incomplete"
    )


def test_online_repair_keeps_the_tenants_instance(nico: NicoRig, tmp_path: Path) -> None:
    nico.fake.add_machine(M)
    inst = nico.fake.place(M, nico.tenant)
    issue = '{"issue_category": "Hardware", "summary": "ECC errors"}'
    blocks = ("PreventAllocations", "PreventInstanceDeletion")
    online = Alert("RequestOnlineRepair", issue, "request-online-repair", None, blocks)
    nico.health.insert(M, Report("request-online-repair", (online,)), "Merge")
    poller = NicoPoller(nico.rest, nico.health, lambda e: None, own_source="breakfix")
    events, _ = poller.poll_once(T0)
    assert events and events[0]["data"]["details"].startswith(
        f"online repair: the tenant keeps instance {inst}"
    )
    dispatch, _ = dispatcher(nico, [SimFault("f", M, start=T0, repair="gpu_reset")], tmp_path)
    assert dispatch.handle(report_decision(events[0])).verdict == "succeeded"
    machine = nico.rest.machine(M)
    assert machine["instanceId"] == inst and list(nico.fake.instances) == [inst]
    assert machine["labels"]["repair_status"] == "Completed"
    assert nico.fake.sources(M) == {"request-online-repair"}  # the tenant exits online repair itself


def test_the_actuator_stage_registers_nico_from_its_config(
    nico: NicoRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from breakfix.actuation import ActuationConfigError, ActuatorOptions, build_actuators

    cfg = tmp_path / "nico.yaml"
    t = nico.cfg.tenant
    cfg.write_text(
        f"url: {nico.fake.url}\norg: {nico.fake.org}\ngrpc: {nico.fake.grpc_target}\ngrpc_tls: false\n"
        f"repair_tenant: {{tenant_id: {t.tenant_id}, vpc_id: {t.vpc_id}, vpc_prefix_id: {t.vpc_prefix_id}, "
        f"operating_system_id: {t.operating_system_id}}}\n"
    )
    monkeypatch.delenv("BREAKFIX_NICO_TOKEN", raising=False)
    with pytest.raises(ActuationConfigError, match="BREAKFIX_NICO_TOKEN"):
        build_actuators(ActuatorOptions(nico_config=cfg, symptoms=False))
    monkeypatch.setenv("BREAKFIX_NICO_TOKEN", REPAIR_TOKEN)
    wired = build_actuators(ActuatorOptions(nico_config=cfg, symptoms=False))
    try:
        assert "nico" in wired.kinds and "nico" not in wired.unconfigured
        nico.fake.add_machine(M)
        actuator = next(a for a in wired.actuators if a.name == "nico")
        assert actuator.owns(M) is False
    finally:
        wired.close()
    assert "--nico FILE" in build_actuators(ActuatorOptions(symptoms=False)).unconfigured["nico"]
