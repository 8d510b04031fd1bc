"""The node agent's persistent request journal: a redelivered request never acts twice, also after
the agent restarted and after the reboot it performed."""

from __future__ import annotations

from pathlib import Path

from agents.nodeagent import NodeAgent, SimulatedGpuOps
from agents.nodeagent.journal import RequestJournal
from tests.unit.test_nodeagent import NOW, request


def agent_on(path: Path, ops: SimulatedGpuOps, boot: str) -> NodeAgent:
    return NodeAgent(
        "n1",
        ops,
        path / "bundles",
        clock=lambda: NOW,
        journal=RequestJournal(path / "j.sqlite"),
        boot_id=lambda: boot,
    )


def test_a_finished_request_is_answered_from_disk_after_a_restart_without_acting(tmp_path: Path) -> None:
    ops = SimulatedGpuOps(gpus=8)
    first = agent_on(tmp_path, ops, "boot-1").handle(request("reboot", rid="d-1/reboot"))
    again = agent_on(tmp_path, ops, "boot-2").handle(request("reboot", rid="d-1/reboot"))
    assert first is not None and first.data.status == "succeeded"
    assert again == first
    assert ops.calls == [("reboot", None)], "the redelivered reboot must not reboot again"


def test_a_reboot_interrupted_by_the_reboot_itself_is_answered_not_repeated(tmp_path: Path) -> None:
    """The node went down between "started" and the answer: the journal has the start, on the old boot."""
    RequestJournal(tmp_path / "j.sqlite").start("d-2/reboot", "boot-1")
    ops = SimulatedGpuOps(gpus=8)
    result = agent_on(tmp_path, ops, "boot-2").handle(request("reboot", rid="d-2/reboot"))
    assert (
        result is not None
        and result.data.status == "succeeded"
        and "not rebooted again" in result.data.detail
    )
    assert ops.calls == []


def test_an_action_interrupted_on_the_same_boot_fails_rather_than_guessing(tmp_path: Path) -> None:
    RequestJournal(tmp_path / "j.sqlite").start("d-3/reset", "boot-1")
    ops = SimulatedGpuOps(gpus=8)
    result = agent_on(tmp_path, ops, "boot-1").handle(request("gpu_reset", gpu=2, rid="d-3/reset"))
    assert result is not None and result.data.status == "failed" and "not repeated" in result.data.detail
    assert ops.calls == []
