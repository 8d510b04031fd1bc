"""The actuator stage as a process (`breakfix run --role actuators`), until SIGTERM or SIGINT.

What acts is pluggable: the caller passes the handler factory (real actuators from
breakfix/actuation/, or the simulated fleet of breakfix/demo/actuation.py), so this entry point is
the same for production and the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from streams.actuation.stage import ActuatorStage, MakeHandler, StageStats
from streams.metrics import serve
from streams.settings import StreamSettings


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
