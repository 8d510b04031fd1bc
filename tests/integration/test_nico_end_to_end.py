"""A simulated fleet's Xid 79 and a tenant's HARDWARE release go through NICo end to end.

The product's own node stage and guard (``OfflineReplay``: the same functions the streaming shell
runs) decide over a recorded fleet; every decision is handed to the real dispatcher and workflow
engine, whose nico actuator talks to the NICo stand-in over HTTP and gRPC. Each exchange is validated
against NICo's OpenAPI document (``../shared/nico/spec.yaml``, NVIDIA/infra-controller). The node
agent that runs in the repair image and the validation it performs are simulated against the
fleet's ground truth (a fault a reboot clears, or one that needs an RMA).

What each run shows: the override seen (or requested), the claim as repair tenant with
``repair_status`` InProgress first, the repair, the outcome label, the release with
``isRepairTenant``, and the machine back in NICo's pool with the product's node Healthy, or kept out
(``tenant-reported-issue`` plus the product's OutForRepair) with its node Escalated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actuators.dispatch import Dispatcher
from actuators.nico import NicoPoller
from actuators.playbooks import load_catalog
from actuators.simulated import SimFault, SimulatedFleet, simulated_actuators
from actuators.workflow import Journal, WorkflowEngine
from policy.model import Policy, load_policy
from schemas.decision import Decision
from sim.replay import OfflineReplay
from tests.fakes.workflow_doubles import SwitchSafety
from tests.fixtures.nico import NicoRig, start

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FLEET = [f"fm100gpu{i:02d}" for i in range(20)]
SICK = FLEET[7]


@pytest.fixture
def nico() -> Iterator[NicoRig]:
    yield from start()


class NicoLoop:
    """Closes the replay's loop through NICo: each decision goes to the real dispatcher; the events
    the workflow emits come back into the stream at event times just after the decision."""

    def __init__(self, rig: NicoRig, faults: list[SimFault], tmp: Path) -> None:
        self.clock = T0
        sim = SimulatedFleet(faults, now=lambda: self.clock.timestamp(), ledger=tmp / "ledger.jsonl")
        acts = [a for a in simulated_actuators(sim) if a.name in {"node_agent", "validate", "ticket"}]
        self.out: list[dict[str, Any]] = []
        engine = WorkflowEngine(
            load_catalog(), [*acts, rig.actuator], Journal(":memory:"), SwitchSafety(), self.emit,
            facts=sim, now=self.tick, sleep=lambda s: None,
        )  # fmt: skip
        self.dispatch = Dispatcher(engine, self.emit, now=self.tick)
        self.handled: list[tuple[str, str]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.out.append(event)

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=30)
        return self.clock

    def on_decision(self, decision: Decision) -> list[dict[str, Any]]:
        self.clock = max(self.clock, decision.time)
        self.out = []
        handled = self.dispatch.handle(decision)
        self.handled.append((decision.trigger, handled.verdict))
        return [json.loads(json.dumps(e, default=str)) for e in self.out]


def recording(path: Path, extra: list[dict[str, Any]]) -> Path:
    """20 machines of one pool, an hour and a half of quiet GPU samples, plus ``extra``."""
    events: list[dict[str, Any]] = []
    for i, node in enumerate(FLEET):
        inv = {"pool": "p1", "rack": f"r{i % 5}", "sku": "H100", "gpus": 8, "labels": {}}
        events.append(_ev(f"inv-{node}", "node.inventory", node, 0, inv))
    quiet = {"temp_c": 55.0, "power_w": 400.0, "util": 90.0, "sbe_volatile": 0, "dbe_volatile": 0,
             "pcie_replay": 0, "nvlink_crc_errors": 0}  # fmt: skip
    gpus = [{"index": g, **quiet} for g in range(8)]
    for k in range(1, 90):
        for node in FLEET:
            events.append(_ev(f"s-{node}-{k}", "gpu.sample", node, 60 * k, {"gpus": gpus}))
    events += extra
    events.sort(key=lambda e: e["time"])
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _ev(
    eid: str, type_: str, node: str, t: float, data: dict[str, Any], source: str = "sim"
) -> dict[str, Any]:
    when = (T0 + timedelta(seconds=t)).isoformat()
    return {"id": eid, "type": type_, "source": source, "time": when, "node": node, "data": data}


def site_policy() -> Policy:
    """The shipped policy with the two classes graduated to auto, as a site running NICo repairs would."""
    doc = load_policy().model_dump()
    doc["modes"]["classes"] = {"gpu_hardware": "auto", "tenant_report": "auto"}
    return Policy.model_validate(doc)


def replay(rec: Path, loop: NicoLoop) -> list[Decision]:
    return [o.decision for o in OfflineReplay(site_policy(), loop).run(rec) if o.decision is not None]


def states(decisions: list[Decision], node: str) -> list[str]:
    return [d.to_state.value for d in decisions if d.node == node and not d.held]


def add_fleet(rig: NicoRig) -> None:
    for node in FLEET:
        rig.fake.add_machine(node, {"RackIdentifier": "GVX11F01C02"})


@pytest.mark.parametrize(("repair", "back"), [("reboot", True), ("rma", False)])
def test_xid79_on_a_simulated_fleet_goes_through_nico(
    nico: NicoRig, tmp_path: Path, repair: str, back: bool
) -> None:
    add_fleet(nico)
    xid = _ev("xid79", "gpu.xid", SICK, 600, {"gpu": 3, "xid": 79, "message": "GPU has fallen off the bus."})
    loop = NicoLoop(nico, [SimFault("f79", SICK, start=(T0 + timedelta(seconds=600)).timestamp(), gpu=3,
                                    repair=repair)], tmp_path)  # fmt: skip
    decisions = replay(recording(tmp_path / "rec.jsonl", [xid]), loop)
    first = next(d for d in decisions if d.node == SICK)
    assert (first.to_state.value, first.failure_class, first.action.value, first.executable) == (
        "Quarantined", "gpu_hardware", "reboot", True,
    )  # fmt: skip
    machine = nico.rest.machine(SICK)
    ops = [
        (m, p.rsplit("/", 2)[-2] if p.count("/") > 5 else p.rsplit("/", 1)[-1], s)
        for m, p, s in nico.fake.requests
    ]
    assert ("POST", "instance", 201) in ops and ("DELETE", "instance", 202) in ops  # claimed, released
    assert ("insert", SICK) in nico.fake.grpc_calls  # evidence and the repair request went to the core
    assert nico.fake.instances == {}
    if back:
        assert states(decisions, SICK)[-1] == "Healthy"
        assert machine["labels"]["repair_status"] == "Completed" and machine["isUsableByTenant"]
        assert nico.fake.sources(SICK) == set()
    else:
        assert states(decisions, SICK)[-1] == "Escalated"
        assert machine["labels"]["repair_status"] == "Failed" and not machine["isUsableByTenant"]
        assert nico.fake.sources(SICK) == {"tenant-reported-issue", "breakfix"}
    assert all(n == SICK for _, n in nico.fake.grpc_calls), "no other machine was touched"


def test_a_tenants_hardware_release_goes_through_nico(nico: NicoRig, tmp_path: Path) -> None:
    add_fleet(nico)
    nico.fake.place(SICK, nico.tenant)
    nico.tenant_release(SICK, "Hardware", "GPU 3 drops off the bus under load")
    seen: list[dict[str, Any]] = []
    poller = NicoPoller(nico.rest, nico.health, seen.append, own_source=nico.cfg.source)
    poller.poll_once((T0 + timedelta(seconds=900)).timestamp())
    assert [(e["type"], e["node"], e["data"]["category"]) for e in seen] == [
        ("tenant.report", SICK, "HARDWARE")
    ]
    loop = NicoLoop(nico, [SimFault("t1", SICK, start=T0.timestamp(), repair="gpu_reset")], tmp_path)
    decisions = replay(recording(tmp_path / "rec.jsonl", seen), loop)
    assert states(decisions, SICK)[0] == "Quarantined" and states(decisions, SICK)[-1] == "Healthy"
    machine = nico.rest.machine(SICK)
    assert machine["labels"] == {"RackIdentifier": "GVX11F01C02", "repair_status": "Completed",
                                 "repair_details": machine["labels"]["repair_details"]}  # fmt: skip
    assert nico.fake.sources(SICK) == set() and machine["status"] == "Ready" and nico.fake.instances == {}


def test_the_simulators_xid79_scenario_goes_through_nico_as_far_as_the_guard_allows(
    nico: NicoRig, tmp_path: Path
) -> None:
    """The fleet simulator's own Xid 79 scenario (two GPUs fall off the bus in a 30-node fleet of
    6-node pools). The guard lets one machine go (the other waits for its pool's headroom, then the
    fleet circuit breaker holds it): that one is claimed, rebooted, validated, labelled Completed and
    released back to NICo's pool; the held one is never touched on NICo."""
    from sim.simulator.actuators import faults_from_labels
    from sim.simulator.engine import SimConfig, simulate
    from sim.simulator.labels import read_labels
    from sim.simulator.scenario import load_scenario, resolve

    rec, labels = tmp_path / "rec.jsonl", tmp_path / "labels.jsonl"
    cfg = SimConfig(nodes=30, hours=3.0, seed=7, start=int(T0.timestamp()), noise=None,
                    scenarios=[load_scenario(p) for p in resolve(["xid79-fallen-off-bus"])])  # fmt: skip
    simulate(cfg, rec, labels)
    faults = faults_from_labels(read_labels(labels))
    assert len({f.node for f in faults}) == 2 and all(f.repair == "reboot" for f in faults)
    for line in rec.read_text().splitlines():
        if '"node.inventory"' in line:
            nico.fake.add_machine(json.loads(line)["node"])
    decisions = replay(rec, NicoLoop(nico, faults, tmp_path))
    acted = {d.node for d in decisions if d.executable and d.to_state.value == "Quarantined"}
    (held,) = {f.node for f in faults} - acted
    (repaired,) = acted
    assert states(decisions, repaired)[-1] == "Healthy"
    machine = nico.rest.machine(repaired)
    assert machine["labels"]["repair_status"] == "Completed" and machine["isUsableByTenant"]
    assert states(decisions, held)[-1] == "Suspect"
    assert any("circuit breaker" in r for d in decisions if d.node == held for r in d.reasons)
    touched = {n for _, n in nico.fake.grpc_calls} | {
        p.rsplit("/", 1)[-1] for m, p, _ in nico.fake.requests if m == "PATCH"
    }
    assert touched == {repaired} and nico.rest.machine(held)["labels"] == {} and nico.fake.instances == {}
