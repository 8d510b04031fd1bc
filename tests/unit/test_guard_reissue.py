"""The guard issues again, with a new stamp, every run a lever may have paused when a lever lifts: the
decision it last made executable for each node (``<id>:reissued:<lever id>``), so the actuator stage
resumes a paused run only under a stamp younger than its freshness bound. The record survives the
guard's snapshot; a node the guard decided for again is no longer in flight; the node stage ignores
a re-issue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

from policy.engine import Engine, NodeRuntime, guard_from_bytes, guard_to_bytes
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import REISSUED
from schemas.proposal import Proposal, Registration
from streams.pipeline.guard_stage import GuardStage
from streams.pipeline.node_stage import NodeStage
from tests.builders import T0
from tests.unit.test_guard import AUTO, place, prop

KINDS: dict[str, type[BaseModel]] = {"proposal": Proposal, "registration": Registration}


def guard(nodes: int = 40) -> GuardStage:
    stage = GuardStage(Engine(AUTO), guard_to_bytes, guard_from_bytes, KINDS, 1, 1e12)
    t = datetime.fromtimestamp(T0, UTC)
    for i in range(nodes):
        reg = Registration(node=f"n{i}", time=t, placement=place(i, f"r{i % 10}"))
        stage.on_item("registration", (T0, f"n{i}", 0), f"reg-n{i}", reg.model_dump_json().encode(), 0, 0.0)
    return stage


def propose(stage: GuardStage, node: str, t: float) -> list[Any]:
    p = prop(node, t, place(int(node[1:]), f"r{int(node[1:]) % 10}"))
    stage.on_item("proposal", (T0 + t, node, 0), p.id, p.model_dump_json().encode(), 0, 0.0)
    stage.on_progress(0, (T0 + t + 1, "", 0))
    stage.release(0.0)
    out, stage.outbox = stage.outbox, []
    return out


def killswitch(on: bool, n: int) -> ControlMessage:
    """Each later lever claims an earlier time: the guard orders them by log position alone."""
    return ControlMessage(
        id=f"ks-{n}", time=datetime.fromtimestamp(T0 + 1000 - n, UTC), kind=ControlKind.KILLSWITCH,
        scope="global", value={"on": on}, actor="ann",
    )  # fmt: skip


def test_a_lifted_lever_reissues_each_run_in_flight_with_a_linked_id() -> None:
    stage = guard()
    [d] = [x for x in propose(stage, "n1", 10) if x.node == "n1"]
    assert d.executable
    stage.on_control(killswitch(True, 20))  # engaged after the guard issued: the actuator pauses
    assert [x for x in stage.outbox if REISSUED in x.id] == []
    stage.outbox = []
    stage.on_control(killswitch(False, 30))  # back-dated, read after the "on": it wins
    assert not stage.g.levers.killswitch_on(None)
    [again] = [x for x in stage.outbox if REISSUED in x.id]
    assert again.id == f"{d.id}{REISSUED}ks-30"
    assert again.model_dump(exclude={"id", "reasons"}) == d.model_dump(exclude={"id", "reasons"})
    assert again.reasons[-1].startswith("issued again: lever killswitch:global lifted")

    stage.outbox = []  # sent
    restarted = GuardStage(Engine(AUTO), guard_to_bytes, guard_from_bytes, KINDS, 1, 1e12)
    restarted.restore(stage.snapshot())
    restarted.on_control(killswitch(False, 40))
    assert [x.id for x in restarted.outbox if REISSUED in x.id] == [f"{d.id}{REISSUED}ks-40"]


def test_a_node_decided_again_is_no_longer_in_flight() -> None:
    stage = guard()
    propose(stage, "n1", 10)
    stage.on_control(killswitch(True, 20))
    held = [x for x in propose(stage, "n2", 25) if x.node == "n2"]
    assert held and not held[0].executable  # decided under the kill switch: held, nothing in flight
    assert set(stage.in_flight) == {"n1"}
    stage.in_flight["n1"] = stage.in_flight["n1"].model_copy(update={"executable": False})
    stage._issue([stage.in_flight["n1"]])  # the guard's next decision for n1 is not executable
    stage.outbox = []
    stage.on_control(killswitch(False, 30))
    assert [x for x in stage.outbox if REISSUED in x.id] == []


def test_the_node_stage_ignores_a_reissue() -> None:
    """A re-issue changes no lifecycle: the node stage applied the original when it came."""
    e: Any = Engine(AUTO)
    node = NodeStage(e, NodeRuntime.from_bytes, e.gate_cfg, e.policy.tick_s)
    node.assign(0, [], 0.0)
    inv = {"id": "e0", "type": "node.inventory", "source": "test", "time": "2025-01-01T01:00:00Z",
           "node": "n1", "data": {"pool": "p1", "rack": "r1", "sku": "H100", "gpus": 8}}  # fmt: skip
    node.on_event(0, 0, orjson.dumps(inv), "e", 0.0)
    slot = node.partitions[0].nodes["n1"]

    def state() -> NodeState:
        return NodeState(slot.rt.life.state)

    assert state() is NodeState.HEALTHY
    stage = guard()
    [d] = [x for x in propose(stage, "n1", 10) if x.node == "n1"]
    stage.on_control(killswitch(False, 30))
    [again] = [x for x in stage.outbox if REISSUED in x.id]
    node.on_decision(0, again.model_dump_json().encode(), "decisions/0@1", 0.0)
    assert state() is NodeState.HEALTHY and again.id not in slot.applied
    node.on_decision(0, d.model_dump_json().encode(), "decisions/0@0", 0.0)  # the original does apply
    assert state() is NodeState.QUARANTINED
