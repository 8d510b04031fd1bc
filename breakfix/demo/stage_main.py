"""The actuator stage as a process (`breakfix run --role actuators --simulate`), until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from breakfix.demo.actuation import FleetClock, faults_from_labels, simulated_handler
from streams.actuator_stage import ActuatorStage, StageStats
from streams.settings import StreamSettings


def run_simulated_actuators(
    settings: StreamSettings,
    labels: Path | None,
    state_dir: Path,
    clock: FleetClock,
    seed: int = 0,
    failure_probability: float = 0.0,
) -> StageStats:
    """Consume decisions and act on a simulated fleet until a signal arrives."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    faults = faults_from_labels(labels) if labels else []
    stage = ActuatorStage(settings, simulated_handler(faults, state_dir, clock, seed, failure_probability))

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
