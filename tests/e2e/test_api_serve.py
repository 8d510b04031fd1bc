"""``breakfix serve`` as a user runs it: a subprocess on a free loopback port with a tokens file,
an embedded chdb store and the session's Tansu broker; stopped with SIGINT like Ctrl-C."""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams.kafka.embedded_broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration
# The console script's entry point, run by this interpreter (works without an installed script).
BREAKFIX = [sys.executable, "-c", "from breakfix.cli.main import main; main()"]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_urlsafe(32)


def _serve(tansu: EmbeddedBroker, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'"{TOKEN}": {{actor: olga, role: operator}}\n')
    port = free_port()
    cmd = [*BREAKFIX, "serve", "--host", "127.0.0.1", "--port", str(port),
           "--store", f"chdb://{tmp_path}/chdb", "--broker", tansu.url, "--tokens", str(tokens),
           "--state-dir", str(tmp_path / "state"), *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env), port


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, verify: ssl.SSLContext | bool = True) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_answers_with_auth_and_stops_on_sigint(tansu: EmbeddedBroker, tmp_path: Path) -> None:
    proc, port = _serve(tansu, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url)
        # every breakfix_api series exists, at zero, before anything happened
        scrape = httpx.get(url + "/metrics").text
        assert 'breakfix_api_workflows_total{outcome="succeeded"} 0.0' in scrape
        assert "breakfix_workflow_step_seconds_count{" not in scrape  # the API runs no workflow step
        assert httpx.get(url + "/nodes").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url + "/nodes", headers=auth).json() == []
        on = httpx.post(url + "/killswitch", headers=auth, json={"on": True, "reason": "e2e"}, timeout=30)
        assert on.status_code == 200 and httpx.get(url + "/killswitch", headers=auth).json()["global"] is True
        assert "breakfix operator API" in httpx.get(url + "/openapi.json").text
    finally:
        _stop(proc)
    assert proc.returncode == 0


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, made here with ``cryptography``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "breakfix-test")])
    now = datetime.now(UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "api.pem", tmp_path / "api-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_serve_speaks_tls_when_given_a_certificate(tansu: EmbeddedBroker, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    proc, port = _serve(tansu, tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        _wait_healthy(proc, f"https://127.0.0.1:{port}", verify=trust)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        nodes = httpx.get(f"https://127.0.0.1:{port}/nodes", headers=auth, verify=trust)
        assert nodes.status_code == 200 and nodes.json() == []
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port gets no API answer
            r = httpx.get(f"http://127.0.0.1:{port}/nodes", headers=auth, timeout=5)
            r.raise_for_status()
        with pytest.raises(httpx.ConnectError):  # and a client that checks certificates refuses it
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        _stop(proc)
    assert proc.returncode == 0


@pytest.mark.parametrize("tokens", ["shipped", "short"])
def test_serve_refuses_example_and_weak_tokens(tmp_path: Path, tokens: str) -> None:
    path = ROOT / "deploy" / "api" / "tokens.yaml"
    if tokens == "short":
        path = tmp_path / "tokens.yaml"
        path.write_text('"op-token-1": {actor: olga, role: operator}\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [*BREAKFIX, "serve", "--tokens", str(path), "--port", str(free_port())]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 2 and "refusing to serve with example or weak" in res.stderr, res.stderr
    assert "token_urlsafe" in res.stderr


def test_serve_says_where_actuators_run_when_given_an_actuator_option(tmp_path: Path) -> None:
    """The API runs no actuator: an option that used to register one is named as moved, with the
    command that takes it, instead of being refused as unknown."""
    path = tmp_path / "tokens.yaml"
    path.write_text('"op-token-1": {actor: olga, role: operator}\n')  # weak: serve stops after the note
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [*BREAKFIX, "serve", "--tokens", str(path), "--kube-url", "http://127.0.0.1:1", "--simulate"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert "actuators no longer run in the API" in res.stderr, res.stderr
    assert "breakfix run --role actuators" in res.stderr.replace("\n", " ")


def test_serve_help_has_an_example() -> None:
    out = subprocess.run(  # `breakfix serve` is `breakfix run --role api` under its older name
        [*BREAKFIX, "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Example: breakfix run --role api" in out and "--tokens" in out


@pytest.mark.parametrize(
    ("dsn", "why"),
    [
        ("http://breakfix:breakfix@clickhouse.example.net:8123/?database=breakfix", "example value"),
        ("http://default@10.0.0.5:8123/", "without a password"),
    ],
)
def test_serve_refuses_example_store_passwords(tmp_path: Path, dsn: str, why: str) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'"{TOKEN}": {{actor: olga, role: operator}}\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [*BREAKFIX, "serve", "--tokens", str(tokens), "--store", dsn, "--port", str(free_port())]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 2 and "refusing the store DSN" in res.stderr and why in res.stderr, res.stderr
