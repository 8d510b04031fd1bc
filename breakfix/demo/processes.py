"""The demo's child processes, started in their own process groups and always stopped.

``breakfix demo`` starts a broker, a node-stage worker, the actuator stage and the sink. Each runs in
its own session (a Ctrl-C in the terminal reaches only the demo), and :class:`Children` stops them
all in reverse order when its ``with`` block ends, however it ends: normally, on an error, or on
KeyboardInterrupt. Stopping is SIGTERM to the whole group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType


class Children:
    def __init__(self) -> None:
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        out = log.open("ab")
        try:
            proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            out.close()
        self.adopt(name, proc)
        return proc

    def adopt(self, name: str, proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
        """Own a process started elsewhere (in its own session): it is stopped with the rest."""
        self.procs[name] = proc
        self._stops.append((name, lambda: terminate(proc, grace_s)))

    def on_exit(self, name: str, stop: Callable[[], None]) -> None:
        self._stops.append((name, stop))

    def stop(self, name: str) -> None:
        """Stop one child now (the sink must release the store before the demo reads it)."""
        for i, (n, fn) in enumerate(self._stops):
            if n == name:
                del self._stops[i]
                fn()
                return

    def dead(self) -> list[str]:
        """Children that exited on their own (a crash the demo should report)."""
        return [
            n for n, p in self.procs.items() if p.poll() is not None and any(s == n for s, _ in self._stops)
        ]

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        while self._stops:
            _, fn = self._stops.pop()
            with contextlib.suppress(Exception):
                fn()


def terminate(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace_s``; returns when the process is gone."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):  # grandchildren left in the group
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for_line(log: Path, text: str, timeout_s: float, alive: Callable[[], bool]) -> None:
    """Block until ``text`` appears in ``log``; fail early when the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if not alive():
            raise RuntimeError(f"process exited before it was ready; see {log}")
        time.sleep(0.1)
    raise TimeoutError(f"{text!r} did not appear in {log} within {timeout_s:.0f}s")
