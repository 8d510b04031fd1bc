"""bench/results.py: a benchmark's result lands as JSON beside the reliability figures, with the
command and machine it came from, and the folder stays out of git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import results


def test_a_result_is_written_with_its_command_and_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "OUT", tmp_path / ".reliability")
    monkeypatch.setattr("sys.argv", ["bench/bench_stream.py", "--workers", "2"])
    path = results.write("stream", {"workers": 2, "node_stage_vs_noop": 0.61})
    assert path == tmp_path / ".reliability" / "bench_stream.json"
    stored = json.loads(path.read_text())
    assert stored["result"] == {"workers": 2, "node_stage_vs_noop": 0.61}
    assert stored["command"].endswith("bench/bench_stream.py --workers 2")
    assert stored["machine"]["cpus"] >= 1
    assert (tmp_path / ".reliability" / ".gitignore").read_text() == "*\n"
    results.write("stream", {"workers": 1})
    assert json.loads(path.read_text())["result"] == {"workers": 1}, "the last run wins"
