"""A workflow run paused by the kill switch (or an exclusion) is a pause, not a failed repair.

The workflow engine reports the refused step (it stays in the audit trail) and pauses the run, which
resumes where it stopped once the lever lifts; meanwhile the node must stay Quarantined. Offline
replay and the streaming node stage (driven here by the stage harness, no Kafka) run the same
lifecycle, so both are checked on the same input. A refusal of the run itself (preconditions,
selection, approval: nothing will run without a person) still escalates, which keeps the first
test from passing merely because results are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from integration.test_stream_stages import Harness

from actuators.playbooks import load_catalog
from actuators.workflow import Journal, WorkflowEngine, from_decision
from actuators.workflow.results import action_result
from policy.lifecycle import RUN_STEP, Life, apply, on_action_result
from policy.model import load_policy
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from schemas.events import ActionResult
from schemas.parse import validate_event_dict
from sim.replay import OfflineReplay
from tests.builders import T0, inventory, sample, xid
from tests.fakes.workflow_doubles import OPS, RecordingActuator, SwitchSafety

H, Q, R, E = NodeState.HEALTHY, NodeState.QUARANTINED, NodeState.REPAIRING, NodeState.ESCALATED


def _result(decision_id: str, step: str, status: str) -> ActionResult:
    ev = validate_event_dict(
        action_result(
            decision_id=decision_id,
            node="n1",
            step=step,
            action="kubernetes.drain_gpu",
            status=status,  # type: ignore[arg-type]
            time=datetime.fromtimestamp(T0 + 10, UTC),
        )
    )
    assert isinstance(ev, ActionResult)
    return ev


def _quarantined(state: NodeState = Q) -> Life:
    life = Life()
    d = Decision(
        id="dq",
        time=datetime.fromtimestamp(T0, UTC),
        node="n1",
        gpu=3,
        from_state=H,
        to_state=state,
        trigger="decisive_signal",
        failure_class="gpu_memory",
        confidence=1.0,
        action=ActionKind.GPU_RESET,
        mode=Mode.AUTO,
        executable=True,
        reasons=["test"],
        evidence=[],
        guard=[],
        policy_version="test",
    )
    apply(life, d, T0)
    return life


@pytest.mark.parametrize("state", [Q, R])
def test_a_refused_step_moves_nothing_and_a_refused_run_escalates(state: NodeState) -> None:
    life = _quarantined(state)
    assert on_action_result(life, _result("dq", "drain-gpu", "refused"), T0 + 10) is None
    for step in (RUN_STEP, ""):  # the run's own outcome; "" from producers that name no step
        draft = on_action_result(life, _result("dq", step, "refused"), T0 + 10)
        assert draft is not None and draft.to_state is E and draft.trigger == "repair_failed"
    failed = on_action_result(life, _result("dq", "drain-gpu", "failed"), T0 + 10)
    assert failed is not None and failed.to_state is E, "a failed step still escalates"


def _base() -> list[bytes]:
    """Eight nodes (one out keeps the pool's headroom) and an Xid 95 on n1: a decisive Quarantine
    whose playbook (gpu-reset-only) may start from Healthy, so the run reaches its first step."""
    nodes = [f"n{i}" for i in range(1, 9)]
    events = [inventory(n, rack=f"r{n}") for n in nodes]
    events += [sample(n, 15 * k) for k in range(1, 240) for n in nodes]
    events.append(xid("n1", 600.5, 95, gpu=3))
    events.sort(key=lambda e: e.time)
    return [e.model_dump_json().encode() for e in events]


def _offline(lines: list[bytes], tmp_path: Path) -> list[Decision]:
    rec = tmp_path / "rec.jsonl"
    rec.write_bytes(b"".join(line + b"\n" for line in lines))
    return [o.decision for o in OfflineReplay(load_policy()).run(rec) if o.decision is not None]


def _streaming(lines: list[bytes], tmp_path: Path) -> list[Decision]:
    h = Harness(5)
    h.feed(lines)
    decisions: list[Decision] = h.run()
    return decisions


def _paused_run(decision: Decision) -> list[dict[str, Any]]:
    """The real workflow engine runs the quarantine (as in auto mode) with the kill switch engaged."""
    events: list[dict[str, Any]] = []
    engine = WorkflowEngine(
        load_catalog(),
        [RecordingActuator(k, ops) for k, ops in OPS.items()],
        Journal(":memory:"),
        SwitchSafety(killswitch=True),
        events.append,
        sleep=lambda s: None,
        now=lambda: decision.time + timedelta(seconds=5),
    )
    auto = decision.model_copy(update={"mode": Mode.AUTO, "executable": True})
    outcome = engine.run(from_decision(auto))
    assert outcome.status == "paused", outcome
    return events


def _merged(base: list[bytes], extra: list[dict[str, Any]]) -> list[bytes]:
    timed = [(orjson.loads(b)["time"], b) for b in base] + [(e["time"], orjson.dumps(e)) for e in extra]
    return [b for _, b in sorted(timed, key=lambda x: datetime.fromisoformat(x[0]))]


Run = Callable[[list[bytes], Path], list[Decision]]


@pytest.mark.parametrize("run", [_offline, _streaming], ids=["offline", "streaming"])
def test_a_run_paused_by_the_kill_switch_keeps_the_node_quarantined(run: Run, tmp_path: Path) -> None:
    base = _base()
    q = next(d for d in _offline(base, tmp_path) if d.node == "n1")
    assert (q.from_state, q.to_state) == (H, Q)
    paused = _paused_run(q)
    refused = [e for e in paused if e["data"]["status"] == "refused"]
    assert refused and all(e["data"]["step"] != RUN_STEP for e in refused), paused
    moves = [(d.from_state, d.to_state) for d in run(_merged(base, paused), tmp_path) if d.node == "n1"]
    assert moves == [(H, Q)], f"a paused run moved the node: {moves}"
    rejected = action_result(
        decision_id=q.id,
        node="n1",
        step=RUN_STEP,
        action="gpu_reset",
        status="refused",
        time=q.time + timedelta(seconds=5),
        detail="approval required",
    )
    moves = [(d.from_state, d.to_state) for d in run(_merged(base, [rejected]), tmp_path) if d.node == "n1"]
    assert moves == [(H, Q), (Q, E)], "a refused run needs a person: it escalates"
