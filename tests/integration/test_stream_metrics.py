"""Stage processes serve their own Prometheus metrics when BREAKFIX_METRICS_PORT is set: a node-stage
worker (with its consumer lag per events partition) and the actuator stage, on the real Tansu broker.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from integration.test_actuator_stage import start_stage_process
from integration.test_stream_kafka import Workers

from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.settings import StreamSettings

pytestmark = [pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape_until(port: int, pattern: str, deadline_s: float) -> str:
    """The /metrics page once ``pattern`` matches it (the last page seen in the failure otherwise)."""
    end, page = time.monotonic() + deadline_s, ""
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                page = r.read().decode()
            if re.search(pattern, page, re.M):
                return page
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not served on :{port} within {deadline_s}s:\n{page[-2000:]}")


async def _produce_garbage(settings: StreamSettings, n: int) -> None:
    """Messages every partition's node stage must read and dead-letter (not JSON events)."""
    p = AIOKafkaProducer(bootstrap_servers=settings.broker)
    await p.start()
    try:
        for i in range(n):
            await p.send(settings.topic("breakfix.events"), b"not json", key=f"gpu-{i}".encode())
        await p.flush()
    finally:
        await p.stop()


def test_worker_serves_its_counters_and_consumer_lag(
    tansu: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    port = _free_port()
    settings = StreamSettings(
        broker=tansu.url,
        app_id=f"bf-{unique}",
        topic_prefix=f"m{unique}.",
        data_dir=tmp_path / "data",
        web_port=0,
        checkpoint_s=0.2,
        metrics_port=port,
    )
    asyncio.run(create_topics(settings))
    pool = Workers(settings, tmp_path)
    pool.start(0)
    try:
        asyncio.run(_produce_garbage(settings, 40))
        page = _scrape_until(port, r'^breakfix_events_processed_total\{stage="node"\} 40\.0$', 90.0)
        assert re.search(r'^breakfix_dead_letters_total\{reason="[a-z_]+"\} 40\.0$', page, re.M), page
        events = re.escape(settings.topic("breakfix.events"))
        labels = rf'group="{settings.app_id}",partition="\d+",topic="{events}"'
        lag = rf"^breakfix_consumer_lag_messages\{{{labels}\}} 0\.0$"
        _scrape_until(port, lag, 30.0)
    finally:
        pool.stop_all()


def test_actuator_stage_serves_its_metrics(tansu: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    port = _free_port()
    settings = StreamSettings(broker=tansu.url, app_id=f"bf-{unique}", topic_prefix=f"a{unique}.")
    asyncio.run(create_topics(settings))
    os.environ["BREAKFIX_METRICS_PORT"] = str(port)  # read by the child's StreamSettings
    try:
        proc = start_stage_process(settings, tmp_path / "state", tmp_path / "stage.log")
    finally:
        del os.environ["BREAKFIX_METRICS_PORT"]
    try:
        # every catalog step's histogram at zero before any run (the stage runs the workflows)
        step = r'^breakfix_workflow_step_seconds_count\{playbook="reboot",step="reboot"\} 0\.0$'
        page = _scrape_until(port, step, 60.0)
        assert "# TYPE breakfix_workflow_step_seconds histogram" in page
        assert "# TYPE breakfix_dead_letters_total counter" in page
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
