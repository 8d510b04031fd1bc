"""Every role as an operator starts it: ``breakfix run --role ROLE`` as a real process on loopback
free ports (the session's Tansu broker, an embedded chdb store), up by its health endpoint or its
ready line, then SIGTERM (what systemd, Kubernetes and ``docker stop`` send) and a clean exit 0."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from streams.kafka.embedded_broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration
BREAKFIX = [sys.executable, "-c", "from breakfix.cli.main import main; main()"]
ROOT = Path(__file__).resolve().parents[2]

Probe = Callable[[Path], bool]


def _http_ok(url: str) -> Probe:
    def probe(_log: Path) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    return probe


def _listening(port: int) -> Probe:
    def probe(_log: Path) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return probe


def _logged(line: str) -> Probe:
    return lambda log: line in log.read_text(errors="replace")


def _role(
    role: str, tansu: EmbeddedBroker, tmp: Path, unique: str
) -> tuple[list[str], dict[str, str], Probe]:
    """The role's command line, environment and the probe that says it is up."""
    port = free_port()
    env = {"BREAKFIX_BROKER": tansu.url, "BREAKFIX_TOPIC_PREFIX": f"r{unique}.", "BREAKFIX_APP_ID": unique}
    env |= {"BREAKFIX_SESSION_TIMEOUT_S": "4", "BREAKFIX_HEARTBEAT_S": "0.5", "BREAKFIX_WEB_PORT": "0"}
    metrics = {"BREAKFIX_METRICS_PORT": str(port)}
    store = f"chdb://{tmp}/chdb"
    if role == "pipeline":  # up once Faust's web server listens (after its signal handlers exist)
        return [], env | {"BREAKFIX_WEB_PORT": str(port)}, _listening(port)
    if role == "actuators":
        args = ["--simulate", "--state-dir", str(tmp / "act")]
        return args, env | metrics, _logged("actuator stage ready")
    if role == "sink":
        args = ["--store", store, "--spool", str(tmp / "spool")]
        started, scraped = _logged("sink started"), _http_ok(f"http://127.0.0.1:{port}/metrics")
        return args, env | metrics, lambda log: started(log) and scraped(log)
    if role == "api":
        tokens = tmp / "tokens.yaml"
        tokens.write_text(f'"{secrets.token_urlsafe(32)}": {{actor: olga, role: operator}}\n')
        args = ["--port", str(port), "--no-kube", "--store", store, "--tokens", str(tokens)]
        return [*args, "--state-dir", str(tmp / "api")], env, _http_ok(f"http://127.0.0.1:{port}/healthz")
    if role == "node-agent":
        args = ["--simulate", "--node", f"gpu-{unique}", "--state-dir", str(tmp / "agent")]
        return args, env, _logged(f"node-agent gpu-{unique}: 8 simulated GPU(s)")
    if role == "metrics":
        return ["--store", store, "--port", str(port)], {}, _http_ok(f"http://127.0.0.1:{port}/metrics")
    assert role == "mcp"
    return ["--transport", "http", "--port", str(port)], {}, _listening(port)


@pytest.mark.parametrize("role", ["pipeline", "actuators", "sink", "api", "node-agent", "metrics", "mcp"])
def test_role_starts_and_stops_cleanly_on_sigterm(
    role: str, tansu: EmbeddedBroker, tmp_path: Path, unique: str
) -> None:
    args, env, up = _role(role, tansu, tmp_path, unique)
    log = tmp_path / f"{role}.log"
    proc = subprocess.Popen(
        [*BREAKFIX, "run", "--role", role, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not up(log):
            assert proc.poll() is None, f"{role} exited {proc.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{role} not up in 90 s: {log.read_text()[-3000:]}"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=45) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_print_settings_never_shows_a_secret_given_by_environment(tmp_path: Path) -> None:
    """As a process (the other roles in-process: tests/unit/test_role_settings.py)."""
    role = "api"
    secret = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BREAKFIX_KAFKA_PASSWORD": secret,
        "BREAKFIX_STORE_DSN": f"http://sink:{secret}@clickhouse:8123/?database=breakfix",
        "BREAKFIX_API_TOKENS": f'{{"{secret}": {{"actor": "a", "role": "viewer"}}}}',
        "BREAKFIX_JIRA_TOKEN": secret,
        "BREAKFIX_NICO_TOKEN": secret,
        "BREAKFIX_API_TOKEN": secret,
        "BREAKFIX_SIGNING_KEY": f"k1 {role} {secret}",
    }
    out = subprocess.run(
        [*BREAKFIX, "run", "--role", role, "--print-settings"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=True,
    ).stdout
    assert secret not in out
    assert "**********" in out  # the secret is there, masked, not dropped
    assert "BREAKFIX_STORE_DSN=http://sink:**********@clickhouse:8123/?database=breakfix" in out
