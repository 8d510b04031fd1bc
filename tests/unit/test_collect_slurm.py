"""SLURM collector on output captured from Debian's slurmctld 22.05.8 (openapi v0.0.38) through an
injected runner; tests/integration/test_collect_slurm_live.py runs the same code against the live daemons."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agents.collect.base import CollectorUnavailable, RecordingSink, run
from agents.collect.slurm import SlurmCollector, subprocess_runner
from schemas.deadletter import DeadLetter
from schemas.events import NodeCondition, NodeInventory, SchedulerState
from schemas.recording import read_recording
from streams.kafka.producer import check

CAPTURE = json.loads((Path(__file__).parent / "collect_data" / "slurm_22.05.8.json").read_text())


class Captured:
    """Answers sinfo/squeue from the capture; tests edit ``sinfo``/``squeue`` between rounds."""

    def __init__(self) -> None:
        self.sinfo: dict[str, Any] = copy.deepcopy(CAPTURE["sinfo"])
        self.squeue: dict[str, Any] = copy.deepcopy(CAPTURE["squeue"])
        self.calls: list[tuple[list[str], float]] = []

    def __call__(self, argv: Sequence[str], timeout_s: float) -> str:
        self.calls.append((list(argv), timeout_s))
        return json.dumps(self.sinfo if argv[0] == "sinfo" else self.squeue)

    def node(self, name: str) -> dict[str, Any]:
        return next(n for n in self.sinfo["nodes"] if n["name"] == name)


def _round(c: SlurmCollector) -> list[Any]:
    return [check(e) for e in c.poll(0)]


def test_first_round_reports_every_node_and_the_drain_with_who_set_it() -> None:
    runner = Captured()
    events = _round(SlurmCollector(runner, timeout_s=7))
    assert [a for a, _ in runner.calls] == [["sinfo", "--json"], ["squeue", "--json"]]
    assert all(t == 7 for _, t in runner.calls)
    conds = {e.node: e.data for e in events if isinstance(e, NodeCondition)}
    assert sorted(conds) == ["gpu01", "gpu02", "gpu03", "gpu04"]
    drained = conds["gpu02"]
    assert (drained.condition, drained.status, drained.reason) == ("SlurmState", "False", "IDLE+DRAIN")
    assert drained.message.startswith("ops: bad fan (set by root at ")
    assert drained.model_extra == {
        "slurm_reason": "ops: bad fan",
        "reason_set_by": "root",
        "reason_time": "2026-11-23T20:16:49+00:00",
    }
    assert (conds["gpu01"].status, conds["gpu01"].reason, conds["gpu01"].message) == ("True", "IDLE", "")
    alloc = {e.node: e.data.allocatable_gpus for e in events if isinstance(e, SchedulerState)}
    assert alloc == {"gpu01": 4, "gpu02": 0, "gpu03": 4, "gpu04": 4, None: 12}
    cluster = next(e for e in events if isinstance(e, SchedulerState) and e.node is None)
    assert cluster.data.pending_pods == 2
    assert cluster.data.unschedulable == {"None": 1, "ReqNodeNotAvail": 1}
    inv = {e.node: e.data for e in events if isinstance(e, NodeInventory)}
    assert inv["gpu01"].gpus == 4 and inv["gpu01"].pool == "gpu"  # pool from the first partition
    assert inv["gpu01"].labels["slurm.gres"] == "gpu:4"


def test_only_changes_are_published() -> None:
    runner = Captured()
    c = SlurmCollector(runner)
    _round(c)
    assert [type(e) for e in _round(c)] == [SchedulerState]  # nothing changed: the cluster summary only
    down = runner.node("gpu03")
    down.update(
        state="down", state_flags=["NOT_RESPONDING"], reason="Not responding", reason_set_by_user="slurm"
    )
    runner.node("gpu02").update(state_flags=[], reason="", reason_set_by_user=None, reason_changed_at=0)
    events = _round(c)
    conds = sorted((e.node, e.data.status, e.data.reason) for e in events if isinstance(e, NodeCondition))
    assert conds == [("gpu02", "True", "IDLE"), ("gpu03", "False", "DOWN+NOT_RESPONDING")]
    alloc = {e.node: e.data.allocatable_gpus for e in events if isinstance(e, SchedulerState)}
    assert alloc == {"gpu02": 4, "gpu03": 0, None: 12}


def test_slurm_error_field_fails_the_round() -> None:
    runner = Captured()
    runner.sinfo["errors"] = [{"error": "Unable to contact slurm controller", "errno": 1}]
    with pytest.raises(RuntimeError, match="Unable to contact"):
        _round(SlurmCollector(runner))


def test_subprocess_runner_times_out_and_reports_failures() -> None:
    run = subprocess_runner()
    with pytest.raises(subprocess.TimeoutExpired):
        run([sys.executable, "-c", "import time; time.sleep(5)"], 0.3)
    with pytest.raises(RuntimeError, match="exited 3: boom"):
        run([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"], 5)
    with pytest.raises(CollectorUnavailable, match="slurm-client"):
        run(["definitely-not-sinfo-here"], 5)


def test_a_recording_of_two_rounds_passes_the_pipeline_gate(tmp_path: Path) -> None:
    out = tmp_path / "slurm.jsonl"
    sink = RecordingSink(out)
    stats = run(SlurmCollector(Captured(), interval_s=0.01), sink, max_rounds=2)
    sink.close()
    items = list(read_recording(out))  # the same gate the node stage applies (inventory first, ...)
    assert not [i for i in items if isinstance(i, DeadLetter)], items
    assert stats.rounds == 2 and stats.events["agent.heartbeat"] == 8


def test_without_json_the_collector_reads_scontrol_text_and_stays_there() -> None:
    calls: list[list[str]] = []
    text = (
        "NodeName=gpu01 State=MIXED+DRAIN Gres=gpu:8 Partitions=h100 "
        "OS=Linux 5.15 #1 SMP Reason=GPU 2 fell off the bus [ops@2026-12-01T10:00:00]\n"
    )

    def runner(argv: Sequence[str], timeout_s: float) -> str:
        calls.append(list(argv))
        if "--json" in argv:
            raise RuntimeError(f"{argv[0]} --json exited 1: sinfo: unrecognized option '--json'")
        return text if argv[0] == "scontrol" else "PENDING|Resources\n"

    c = SlurmCollector(runner)
    events = _round(c)
    cond = next(e for e in events if isinstance(e, NodeCondition))
    assert (cond.node, cond.data.status, cond.data.reason) == ("gpu01", "False", "MIXED+DRAIN")
    assert (
        cond.data.model_extra is not None
        and cond.data.model_extra["slurm_reason"] == "GPU 2 fell off the bus"
    )
    inv = next(e for e in events if isinstance(e, NodeInventory))
    assert (inv.data.gpus, inv.data.pool) == (8, "h100")
    calls.clear()
    _round(c)
    assert all("--json" not in argv for argv in calls)  # no JSON retry every round


def test_a_controller_error_in_json_is_not_taken_for_missing_json() -> None:
    runner = Captured()
    runner.sinfo["errors"] = [{"error": "Unable to contact slurm controller", "errno": 1}]
    c = SlurmCollector(runner)
    with pytest.raises(RuntimeError, match="Unable to contact"):
        _round(c)
    assert not c.text_mode


def test_neither_json_nor_text_fails_the_round_naming_both() -> None:
    def runner(argv: Sequence[str], timeout_s: float) -> str:
        raise RuntimeError(f"{argv[0]} exited 1: slurm_load_node error: Unable to contact slurm controller")

    with pytest.raises(RuntimeError, match="neither JSON"):
        _round(SlurmCollector(runner))
