"""The actuator stage as a process (`breakfix run --role actuators`), until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from actuators.base import Actuator
from breakfix.demo.actuation import FleetClock, simulated_handler
from breakfix.simulate.actuators import faults_from_labels
from breakfix.simulate.labels import read_labels
from streams.actuator_stage import ActuatorStage, MakeHandler, StageStats
from streams.metrics import serve
from streams.settings import StreamSettings


def run_simulated_actuators(
    settings: StreamSettings,
    labels: Path | None,
    state_dir: Path,
    clock: FleetClock,
    seed: int = 0,
    failure_probability: float = 0.0,
    real: Sequence[Actuator] = (),
) -> StageStats:
    """Consume decisions and act on a simulated fleet until a signal arrives (``real``: actuators
    standing in for simulated kinds, see :func:`~breakfix.demo.actuation.simulated_handler`)."""
    faults = faults_from_labels(read_labels(labels)) if labels else []
    return run_actuator_stage(
        settings, simulated_handler(faults, state_dir, clock, seed, failure_probability, real), state_dir
    )


def run_actuator_stage(settings: StreamSettings, make_handler: MakeHandler, state_dir: Path) -> StageStats:
    """Consume decisions with ``make_handler``'s actuators until a signal arrives. Decisions a lever
    paused are kept under ``state_dir/paused`` so a restart resumes them once the lever lifts."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if settings.metrics_port is not None:
        serve(settings.metrics_port, settings.web_host)  # the stage's and workflows' counters
    stage = ActuatorStage(settings, make_handler, paused_dir=state_dir / "paused")

    async def main() -> StageStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        ready = asyncio.create_task(stage.ready.wait())
        ready.add_done_callback(lambda t: t.cancelled() or print("actuator stage ready", flush=True))
        try:
            return await stage.run(stop)
        finally:
            ready.cancel()

    return asyncio.run(main())
