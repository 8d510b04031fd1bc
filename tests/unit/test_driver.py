"""The event-time driver (policy.driver) that offline replay and every node-stage partition run on:
the clock, the far-future clamp, the tick grid and the fleet gate, and the one simulated world the
replay, the demo and ``--simulate`` act on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actuators.simulated import DURATIONS_S, SimFault, SimulatedFleet
from policy.driver import EventClock
from policy.model import load_policy
from schemas.decision import ActionKind, Decision, Mode
from schemas.gate import GateConfig
from schemas.parse import validate_event_dict
from schemas.vocab import NodeState
from sim.replay import OfflineReplay
from sim.simulator.actuators import SimulatedActuators
from sim.simulator.labels import Label
from streams.pipeline.node_stage import NodeStage

POLICY = load_policy()
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, on every tick grid


def test_replay_and_every_node_stage_partition_run_on_the_same_driver() -> None:
    replay = OfflineReplay(POLICY)
    stage = NodeStage(replay.engine, None, replay.engine.gate_cfg, POLICY.tick_s)  # type: ignore[arg-type]
    stage.assign(0, [], 0.0)
    for clock in (replay.time, stage.partitions[0].time):
        assert type(clock) is EventClock
        assert (clock.tick_s, clock.far_future_s) == (POLICY.tick_s, replay.engine.gate_cfg.far_future_s)


def test_ticks_fall_on_an_epoch_grid_before_the_first_event_past_them() -> None:
    c = EventClock(tick_s=30.0, far_future_s=600.0)
    assert list(c.ticks(c.due(T0 + 5) or 0.0)) == [] and c.next_tick == T0 + 30
    c.accept(T0 + 5)
    assert c.due(T0 + 29) is None, "no tick due: answered without a loop"
    due = c.due(T0 + 95)
    assert due == T0 + 95 and list(c.ticks(due)) == [T0 + 30, T0 + 60, T0 + 90]


def test_a_far_future_event_runs_no_tick_and_a_late_one_ticks_to_the_clock() -> None:
    c = EventClock(tick_s=30.0, far_future_s=600.0)
    c.accept(T0)
    list(c.ticks(T0))
    assert c.due(T0 + 601) is None, "a host clock far ahead never ages the fleet"
    assert c.due(T0 + 600) == T0 + 600
    c.accept(T0 + 100)
    assert c.now(T0 + 50) == T0 + 100 and c.due(T0 + 50) == T0 + 100, "a late event ticks up to the clock"
    c.accept(T0 + 50)
    assert c.clock == T0 + 100, "the clock never goes back"


def test_the_fleet_gate_judges_node_less_events_against_the_clock() -> None:
    c = EventClock(tick_s=30.0, far_future_s=600.0)
    c.accept(T0)
    gate = GateConfig()
    change = {
        "id": "chg-1",
        "type": "change.event",
        "source": "deployer",
        "time": datetime.fromtimestamp(T0 + 10, UTC).isoformat(),
        "data": {"kind": "driver", "version": "550.90.07", "scope": {"pool": "p1"}},
    }
    ev = validate_event_dict(change)
    assert c.check_fleet(ev, gate) is None
    verdict = c.check_fleet(ev, gate)
    assert verdict is not None and verdict[0].value == "duplicate"
    later = datetime.fromtimestamp(T0 + 7200, UTC).isoformat()
    far = validate_event_dict({**change, "id": "chg-2", "time": later})
    verdict = c.check_fleet(far, gate)
    assert verdict is not None and verdict[0].value == "far_future"


def _decision(action: ActionKind, at: datetime) -> Decision:
    return Decision(
        id=f"d-{action.value}",
        time=at,
        node="gpu-01",
        from_state=NodeState.QUARANTINED,
        to_state=NodeState.VALIDATING if action is ActionKind.VALIDATE else NodeState.QUARANTINED,
        trigger="test",
        failure_class="gpu_hardware",
        confidence=0.9,
        action=action,
        mode=Mode.AUTO,
        executable=True,
        reasons=[],
        evidence=[],
        policy_version="t",
    )


def test_replay_answers_a_reboot_after_the_simulated_worlds_reboot() -> None:
    """Replay's actuators took 600 s for a reboot while the demo's simulated fleet took 240 s; both
    now read the one table of operation durations."""
    at = datetime.fromtimestamp(T0, UTC)
    done = SimulatedActuators(failure_probability=0.0).on_decision(_decision(ActionKind.REBOOT, at))[0]
    assert validate_event_dict(done).time == at + timedelta(seconds=DURATIONS_S["reboot"])
    check = SimulatedActuators(failure_probability=0.0).on_decision(_decision(ActionKind.VALIDATE, at))[0]
    assert validate_event_dict(check).time == at + timedelta(seconds=DURATIONS_S["run"])


def test_replay_and_the_simulated_fleet_clear_a_fault_by_the_same_rule() -> None:
    start, end = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 3600, UTC)
    label = Label(id="f1", node="gpu-01", gpu=3, failure_class="gpu_hardware", start=start, end=end,
                  scenario="t", truth="fault", expected="quarantine", repair="reboot")  # fmt: skip
    fault = SimFault("f1", "gpu-01", T0, T0 + 3600, gpu=3, repair="reboot", persistent=True)
    replay = SimulatedActuators(labels=[label], failure_probability=0.0)
    fleet = SimulatedFleet([fault], now=lambda: T0 + 100)
    assert replay.still_broken("gpu-01", 3, T0 + 100) == fleet.broken("gpu-01", 3, T0 + 100) == fault
    assert replay.still_broken("gpu-01", 3, T0 + 3600) is fleet.broken("gpu-01", 3, T0 + 3600) is None
