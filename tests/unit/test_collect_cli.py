"""``breakfix collect`` as a user runs it: exit codes and messages that say what to do."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from breakfix.cli.main import app
from schemas.recording import read_recording

runner = CliRunner()


def test_nvml_without_a_driver_says_so_and_exits_3(tmp_path: Path) -> None:
    # No NVIDIA driver on the test machines: this is the real pynvml failing to load libnvidia-ml.
    result = runner.invoke(app, ["collect", "nvml", "--once", "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 3
    assert "no NVIDIA driver" in result.output and "collect dcgm" in result.output


def test_exactly_one_output_is_required(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_text("")
    both = [
        "collect",
        "kernel",
        "--file",
        str(log),
        "--once",
        "--out",
        str(tmp_path / "o"),
        "--broker",
        "x:1",
    ]
    assert runner.invoke(app, both).exit_code == 2
    assert runner.invoke(app, ["collect", "kernel", "--file", str(log), "--once"]).exit_code == 2
    assert runner.invoke(app, ["collect", "kernel", "--once", "--out", str(tmp_path / "o")]).exit_code == 2


def test_kernel_once_writes_a_valid_recording(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus.\nsystemd: started\n")
    out = tmp_path / "kernel.jsonl"
    args = [
        "collect",
        "kernel",
        "--file",
        str(log),
        "--from-start",
        "--once",
        "--node",
        "gpu09",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    events = list(read_recording(out))
    assert [e.type for e in events] == ["node.inventory", "node.kernel", "agent.heartbeat"]  # type: ignore[union-attr]
    assert {e.node for e in events} == {"gpu09"}  # type: ignore[union-attr]
