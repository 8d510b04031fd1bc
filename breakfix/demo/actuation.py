"""Wiring of the actuator stage to simulated actuators: ground truth, fleet clock, engine, dispatcher.

The streams layer cannot import actuators (import-linter keeps them independent), so the pieces meet
here, in the user-facing layer: ``breakfix run --role actuators --simulate`` and ``breakfix demo``
build a :class:`~streams.actuation.stage.ActuatorStage` with :func:`simulated_handler` (the shared
engine handler of breakfix/actuation/ over simulated actuators; real ones are wired there too).

The fleet clock maps wall time onto the recording's event time (``origin`` at ``wall_origin``, played
``speed`` times faster), so an action's result carries the time it happened in the simulated world,
which is what the node stage's gate and stream clock judge it by (see :class:`FleetClock`). Simulated
durations are slept scaled down by ``speed``, so a reboot takes seconds, not minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from actuators.base import Actuator
from actuators.simulated import Recorded, SimFault, SimulatedFleet, simulated_actuators
from breakfix.actuation.handler import engine_handler
from streams.actuation.stage import MakeHandler


@dataclass
class FleetClock:
    """Event time of the simulated world: ``origin + (wall - wall_origin) * speed - lag_s``, never past
    ``until`` (the end of the recording), never going back, never before a decision it acts on.

    Why the feed's clock and not the decision's time: a result is appended to its node's partition
    after every event fed so far, so when the node stage reaches it, that node's newest event and the
    partition's stream clock are about the feed's position at the time of the action, however far
    the node stage lags. A result stamped near that position is neither out of order nor far-future.
    """

    origin: float
    wall_origin: float
    speed: float = 1.0
    lag_s: float = 0.0
    until: float | None = None
    step_speed: float | None = None
    """How much faster than their simulated durations steps run (default ``speed``): the local stack
    keeps the fleet on the wall clock (its telemetry is live) and still reboots in seconds."""
    _floor: float = field(default=float("-inf"), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        t = self.origin + (time.time() - self.wall_origin) * self.speed - self.lag_s
        if self.until is not None:
            t = min(t, self.until - self.lag_s)
        with self._lock:
            self._floor = max(self._floor, t)
            return self._floor

    def at_least(self, t: float) -> None:
        with self._lock:
            self._floor = max(self._floor, t)

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def wait(self, sim_s: float) -> None:
        """Let ``sim_s`` seconds of fleet time pass, scaled down to wall time."""
        time.sleep(sim_s / (self.step_speed or self.speed))


def simulated_handler(
    faults: list[SimFault],
    state_dir: Path,
    clock: FleetClock,
    seed: int = 0,
    failure_probability: float = 0.0,
    real: Sequence[Actuator] = (),
) -> MakeHandler:
    """A handler factory for the actuator stage: journal and fleet ledger kept under ``state_dir``,
    so a restarted stage resumes its runs and the fleet remembers what was done to it. ``real``:
    actuators that stand in for the simulated kinds of their names (``breakfix node-agent
    --simulate`` processes reached over Kafka), their changes recorded as the fleet's."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fleet = SimulatedFleet(
        faults,
        seed=seed,
        now=clock.now,
        wait=clock.wait,
        failure_probability=failure_probability,
        ledger=state_dir / "fleet-ledger.jsonl",
    )
    replaced = {a.name for a in real}
    actuators = [a for a in simulated_actuators(fleet) if a.name not in replaced]
    return engine_handler(
        [*actuators, *(Recorded(a, fleet) for a in real)],
        state_dir / "journal.sqlite",
        facts=fleet,
        now=clock.now_dt,
        before=lambda d: clock.at_least(d.time.timestamp()),
    )


def simulated_factory(
    labels: Path | None,
    state_dir: Path,
    clock: FleetClock,
    seed: int = 0,
    failure_probability: float = 0.0,
    real: Sequence[Actuator] = (),
) -> MakeHandler:
    """The handler factory ``breakfix run --role actuators --simulate`` hands to the stage's entry point
    (streams/actuation/main.py): faults from ``breakfix simulate --labels`` ground truth, if any;
    ``real`` as in :func:`simulated_handler`."""
    from sim.simulator.actuators import faults_from_labels
    from sim.simulator.labels import read_labels

    faults = faults_from_labels(read_labels(labels)) if labels else []
    return simulated_handler(faults, state_dir, clock, seed, failure_probability, real)
