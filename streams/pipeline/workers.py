"""Process management for ``breakfix run``: N Faust workers in one consumer group, optionally on the
embedded Tansu broker.

Each worker is its own process (``python -m streams.pipeline.workers``) with ``BREAKFIX_WORKER_INDEX`` set, so
it binds its own web port and RocksDB folder. The supervisor creates the catalogue's topics first
(a worker must never subscribe to a topic the broker would auto-create with the wrong partition
count), forwards SIGINT/SIGTERM to the workers and returns when they have all stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic import SecretStr

from streams.kafka.topics import create_topics
from streams.settings import StreamSettings


def worker_command() -> list[str]:
    return [sys.executable, "-m", "streams.pipeline.workers"]


def start_worker(settings: StreamSettings, index: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """One worker process; settings travel as BREAKFIX_* environment variables."""
    env = {**os.environ, **settings_env(settings), "BREAKFIX_WORKER_INDEX": str(index)}
    out = open(log, "ab") if log else None  # noqa: SIM115 - owned by the child process
    return subprocess.Popen(
        worker_command(),
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
        start_new_session=True,
    )


def settings_env(settings: StreamSettings) -> dict[str, str]:
    return {
        f"BREAKFIX_{name.upper()}": value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        for name, value in settings.model_dump().items()
        if value is not None and name != "worker_index"
    }


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; the worker's whole process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def supervise(settings: StreamSettings, log_dir: Path | None = None, create: bool = True) -> int:
    """Create topics (unless ``create`` is false: a principal without the right to, whose topics a
    deploy job made), start ``settings.workers`` workers and wait; a signal stops them all."""
    if create:
        asyncio.run(create_topics(settings))
    procs = [
        start_worker(settings, i, log_dir / f"worker-{i}.log" if log_dir else None)
        for i in range(settings.workers)
    ]
    stopping = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopping["now"] and all(p.poll() is None for p in procs):
            time.sleep(0.2)
    finally:
        for p in procs:
            stop(p)
    return max((p.returncode or 0) for p in procs)


def worker_main() -> None:
    """Entry point of one worker process."""
    import faust

    from streams.pipeline.app import create_app

    settings = StreamSettings()
    if settings.metrics_port is not None:
        from streams.metrics import serve

        serve(settings.metrics_port + settings.worker_index, settings.web_host)
    app = create_app(settings)
    faust.Worker(app, loglevel=settings.log_level).execute_from_commandline()


if __name__ == "__main__":
    worker_main()
