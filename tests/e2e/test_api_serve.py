"""``breakfix serve`` as a user runs it: a subprocess on a free loopback port with a tokens file,
an embedded chdb store and the session's Tansu broker; stopped with SIGINT like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from streams.embedded_broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration
# The console script's entry point, run by this interpreter (works without an installed script).
BREAKFIX = [sys.executable, "-c", "from breakfix.cli.main import main; main()"]


def test_serve_answers_with_auth_and_stops_on_sigint(tansu: EmbeddedBroker, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text('"op-token": {actor: olga, role: operator}\n')
    port = free_port()
    cmd = [*BREAKFIX, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-kube",
           "--store", f"chdb://{tmp_path}/chdb", "--broker", tansu.url, "--tokens", str(tokens),
           "--state-dir", str(tmp_path / "state")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stdout.read() if proc.stdout else ""
            )
            time.sleep(0.2)
        assert httpx.get(url + "/nodes").status_code == 401
        auth = {"Authorization": "Bearer op-token"}
        assert httpx.get(url + "/nodes", headers=auth).json() == []
        on = httpx.post(url + "/killswitch", headers=auth, json={"on": True, "reason": "e2e"}, timeout=30)
        assert on.status_code == 200 and httpx.get(url + "/killswitch", headers=auth).json()["global"] is True
        assert "breakfix operator API" in httpx.get(url + "/openapi.json").text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_serve_help_has_an_example() -> None:
    out = subprocess.run(
        [*BREAKFIX, "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Example: breakfix serve" in out and "--tokens" in out
