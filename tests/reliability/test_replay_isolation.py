"""A recording replayed into Kafka with ``breakfix replay --into-kafka`` reaches no actuator, even under
a policy that would act on it live: node-stage workers and the actuator stage run for real on Tansu.

A live executable decision published after the replay is the sentinel: it must run, which proves the
actuator stage was consuming the whole time, and it must be the only thing in the fleet's ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.test_actuator_stage import collect, decision, publish, start_stage_process
from integration.test_stream_kafka import Workers, read_decisions
from reliability.figures import record
from reliability.safety import assert_safe

from breakfix.cli.replay_cmd import run_offline
from policy.model import DEFAULT_POLICY, load_policy
from sim.simulator.clock import parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.topics import create_topics
from streams.settings import StreamSettings
from tests.signing import sealed

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BREAKFIX = str(Path(sys.executable).parent / "breakfix")


def _results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The actuator stage's ``action.result`` events among the replayed telemetry on the events topic."""
    return [e for e in events if e.get("type") == "action.result"]


def _finished(decision_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    def check(events: list[dict[str, Any]]) -> bool:
        return any(
            e["data"]["decision_id"] == decision_id and e["data"]["step"] == "workflow"
            for e in _results(events)
        )

    return check


def _acting_policy(path: Path) -> Path:
    """The shipped policy with every class that may be automatic set to auto and no approvals."""
    raw = yaml.safe_load(DEFAULT_POLICY.read_text())
    raw["modes"]["classes"] = dict.fromkeys(raw["auto_allowed"], "auto")
    raw["approval_required_for"] = []
    path.write_text(yaml.safe_dump(raw))
    return path


def test_replay_into_kafka_reaches_no_actuator(tansu: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    policy = _acting_policy(tmp_path / "auto.yaml")
    settings = StreamSettings(
        broker=tansu.url, app_id=f"ri-{unique}", topic_prefix=f"r{unique}.", data_dir=tmp_path / "data",
        web_port=0, session_timeout_s=4, heartbeat_s=0.5, policy_file=policy,
    )  # fmt: skip
    asyncio.run(create_topics(settings))
    rec = tmp_path / "rec.jsonl"
    sc = [load_scenario(p) for p in resolve(["xid79-fallen-off-bus", "tenant-report"])]
    simulate(
        SimConfig(nodes=40, hours=2, seed=3, start=parse_start("2025-01-01T00:00:00Z"), scenarios=sc), rec
    )
    offline, _ = run_offline(str(rec), load_policy(policy), None, None, None, False)
    would_act = sum(d.executable for d in offline)
    assert would_act > 0, "the recording must act when live, or the replay proves nothing"

    state, log = tmp_path / "state", tmp_path / "stage.log"
    pool = Workers(settings, tmp_path)
    stage = start_stage_process(settings, state, log)
    try:
        pool.start(0)
        env = {
            **os.environ,
            "BREAKFIX_TOPIC_PREFIX": settings.topic_prefix,
            "BREAKFIX_APP_ID": settings.app_id,
        }
        cli = [BREAKFIX, "replay", str(rec), "--into-kafka", "--broker", tansu.url, "--as-fast-as-possible"]
        run = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        streamed = read_decisions(settings, len(offline), timeout_s=120.0)
        sentinel = decision("gpu-live")
        asyncio.run(publish(settings, "breakfix.decisions", [(b"gpu-live", sealed(sentinel))]))
        events = asyncio.run(collect(settings, _finished(sentinel.id), timeout_s=90))
    finally:
        pool.stop_all()
        stage.send_signal(signal.SIGTERM)
        try:
            stage.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(stage.pid, signal.SIGKILL)
    assert _finished(sentinel.id)(events), log.read_text()[-3000:]
    ledger = state / "fleet-ledger.jsonl"
    touched = {json.loads(x)["node"] for x in ledger.read_text().splitlines()} if ledger.exists() else set()
    replay_results = [e for e in _results(events) if e["data"]["decision_id"] != sentinel.id]
    record(
        "security.replay_into_kafka",
        recording_decisions=len(offline),
        would_execute_live=would_act,
        replayed_decisions=len(streamed),
        replayed_marked=sum(d.replay for d in streamed),
        replayed_executable=sum(d.executable for d in streamed),
        nodes_mutated_by_replay=len(touched - {"gpu-live"}),
        action_results_for_replay=len(replay_results),
    )
    assert len(streamed) == len(offline) and all(d.replay and not d.executable for d in streamed)
    assert touched == {"gpu-live"}, f"the replay reached an actuator: {sorted(touched)}"
    assert replay_results == []
    assert_safe(streamed, rec, policy=load_policy(policy))
