"""As a user: ``breakfix simulate`` then ``breakfix score`` through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode

BREAKFIX = str(Path(sys.executable).parent / "breakfix")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BREAKFIX, *args], capture_output=True, text=True, timeout=120, check=False)


def _oracle(labels: Path, out: Path) -> None:
    """Perfect decisions: quarantine every true fault one minute after it starts, nothing else."""
    lines = []
    for raw in labels.read_text().splitlines():
        lb = json.loads(raw)
        if lb["truth"] != "fault":
            continue
        d = Decision(
            id=f"o-{lb['id']}",
            time=lb["start"],
            node=lb["node"],
            gpu=lb["gpu"],
            from_state=NodeState.HEALTHY,
            to_state=NodeState.QUARANTINED,
            trigger="oracle",
            failure_class=lb["class"],
            confidence=1.0,
            action=ActionKind.GPU_RESET,
            mode=Mode.AUTO,
            executable=True,
            reasons=[],
            evidence=[],
            policy_version="oracle",
        )
        lines.append(d.model_dump_json())
    out.write_text("\n".join(lines) + "\n")


def test_simulate_then_score_against_the_naive_baseline(tmp_path: Path) -> None:
    rec, labels, decisions = tmp_path / "rec.jsonl.gz", tmp_path / "truth.jsonl", tmp_path / "dec.jsonl"
    sim = _run(
        "simulate",
        "--nodes",
        "24",
        "--hours",
        "2",
        "--seed",
        "4",
        "--scenario",
        "noise",
        "--scenario",
        "xid79-fallen-off-bus",
        "--out",
        str(rec),
        "--labels",
        str(labels),
        "--json",
    )
    assert sim.returncode == 0, sim.stderr
    summary = json.loads(sim.stdout)
    assert summary["events"] > 10_000 and summary["label_count"] == 11
    assert _run("validate", str(rec)).returncode == 0
    _oracle(labels, decisions)
    res = _run(
        "score",
        "--labels",
        str(labels),
        "--decisions",
        str(decisions),
        "--recording",
        str(rec),
        "--baseline",
        "naive",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["ours"]["precision"] == 1.0 and doc["ours"]["recall"] == 1.0
    assert doc["ours"]["wrongful_destructive"] == 0
    assert doc["naive"]["false_quarantines"] >= 9
    assert doc["comparison"]["false_quarantines"]["ratio"] == 0.0
    table = _run(
        "score",
        "--labels",
        str(labels),
        "--decisions",
        str(decisions),
        "--recording",
        str(rec),
        "--baseline",
        "naive",
    )
    assert "ours / naive" in table.stdout and "quarantine precision" in table.stdout


def test_bad_scenario_fails_with_the_key_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nfaults:\n  - kind: xid79\n    duration: later\n")
    res = _run(
        "simulate", "--nodes", "8", "--hours", "0.1", "--scenario", str(bad), "--out", str(tmp_path / "r")
    )
    assert res.returncode == 2
    assert "faults.0.xid79.duration" in res.stderr


def test_score_without_recording_refuses_the_baseline(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text("")
    res = _run("score", "--labels", str(f), "--decisions", str(f), "--baseline", "naive")
    assert res.returncode == 2 and "--recording" in res.stderr
