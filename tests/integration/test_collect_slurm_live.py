"""SLURM collector against the real slurmctld + slurmd from tests/fixtures/slurm.py."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from agents.collect.slurm import SlurmCollector, subprocess_runner
from schemas.events import NodeCondition, NodeInventory, SchedulerState
from streams.kafka.producer import check
from tests.fixtures.slurm import SlurmCluster

pytestmark = pytest.mark.integration


def _round(c: SlurmCollector) -> list[Any]:
    return [check(e) for e in c.poll(0)]


def test_drain_by_an_operator_and_resume_on_a_live_cluster(slurm: SlurmCluster) -> None:
    c = SlurmCollector(subprocess_runner(slurm.env), timeout_s=10)
    first = _round(c)
    assert sorted(e.node for e in first if isinstance(e, NodeCondition)) == list(slurm.nodes)
    assert all(e.data.status == "True" for e in first if isinstance(e, NodeCondition))

    slurm.scontrol("update", "NodeName=gpu03", "State=DRAIN", "Reason=ops: PSU swap")
    events = _round(c)
    conds = [e for e in events if isinstance(e, NodeCondition)]
    assert [(e.node, e.data.status) for e in conds] == [("gpu03", "False")]
    assert "DRAIN" in conds[0].data.reason
    assert conds[0].data.model_extra is not None
    assert conds[0].data.model_extra["slurm_reason"] == "ops: PSU swap"
    assert conds[0].data.model_extra["reason_set_by"] == "root"
    alloc = {e.node: e.data.allocatable_gpus for e in events if isinstance(e, SchedulerState)}
    assert alloc["gpu03"] == 0 and alloc[None] == 12

    slurm.scontrol("update", "NodeName=gpu03", "State=RESUME")
    # After RESUME slurmctld pings the node; it may pass through NOT_RESPONDING before it is IDLE.
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 20
    while not seen or seen[-1][0] != "True":
        assert time.monotonic() < deadline, seen
        seen += [(e.data.status, e.data.reason) for e in _round(c) if isinstance(e, NodeCondition)]
        time.sleep(0.2)
    assert seen[-1] == ("True", "IDLE")
    assert all("DRAIN" not in reason for _, reason in seen)


def test_pending_jobs_show_up_with_their_reason(slurm: SlurmCluster) -> None:
    slurm.scontrol("update", "NodeName=gpu01,gpu02,gpu03,gpu04", "State=DRAIN", "Reason=maintenance")
    slurm.run("sbatch", "--wrap", "sleep 30", "-N", "1", "--gres=gpu:4")
    c = SlurmCollector(subprocess_runner(slurm.env))
    cluster = next(e for e in _round(c) if isinstance(e, SchedulerState) and e.node is None)
    assert cluster.data.pending_pods == 1
    assert sum(cluster.data.unschedulable.values()) == 1
    assert cluster.data.allocatable_gpus == 0


def test_scontrol_text_is_read_as_the_json_of_the_same_live_cluster(slurm: SlurmCluster) -> None:
    """Slurm without JSON: `scontrol show node -o` text gives the same conditions as `sinfo --json`."""
    slurm.scontrol("update", "NodeName=gpu02", "State=DRAIN", "Reason=ops: GPU 3 xid=79 twice, see TICKET-12")
    slurm.run("sbatch", "--wrap", "sleep 30", "-N", "1", "--gres=gpu:4", "-w", "gpu02")
    real = subprocess_runner(slurm.env)

    def no_json(argv: Sequence[str], timeout_s: float) -> str:
        if "--json" in argv:
            raise RuntimeError(f"{argv[0]}: error: unrecognized option '--json'")
        return real(argv, timeout_s)

    def view(events: list[Any]) -> dict[str | None, Any]:
        out: dict[str | None, Any] = {}
        for e in events:
            if isinstance(e, NodeCondition):
                out[e.node] = (e.data.status, e.data.reason, e.data.message, e.data.model_extra)
            elif isinstance(e, NodeInventory):
                out[f"inv:{e.node}"] = (e.data.gpus, e.data.pool)
            elif isinstance(e, SchedulerState):
                out[f"sched:{e.node}"] = e.data.model_dump()
        return out

    text = SlurmCollector(no_json)
    from_text, from_json = view(_round(text)), view(_round(SlurmCollector(real)))
    assert text.text_mode
    assert from_text == from_json
    status, reason, _, extra = from_text["gpu02"]
    assert (status, reason) == ("False", "IDLE+DRAIN")
    assert (
        extra["slurm_reason"] == "ops: GPU 3 xid=79 twice, see TICKET-12" and extra["reason_set_by"] == "root"
    )
    assert from_text["sched:None"]["pending_pods"] == 1
