"""The CLI as a user runs it: validate a mixed file, replay deterministically, check a bad policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reliability.safety import assert_safe_jsonl

from tests.conftest import REPO, SAMPLE


def run(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from breakfix.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_validate_reports_every_bad_input_class_and_exits_nonzero(tmp_path: Path) -> None:
    good = SAMPLE.read_text().splitlines()
    inv = json.loads(good[0])
    xid = {
        "id": "x1",
        "type": "gpu.xid",
        "source": "t",
        "time": "2026-11-23T10:01:10Z",
        "node": inv["node"],
        "data": {"gpu": 0, "xid": 79},
    }
    bad = [
        "{oops",
        json.dumps({**xid, "type": "nope"}),
        json.dumps({k: v for k, v in xid.items() if k != "id"}),
        json.dumps({**xid, "id": "x2", "data": {"gpu": "zero", "xid": 79}}),
        json.dumps(
            {**xid, "id": "x3", "type": "gpu.sample", "data": {"gpus": [{"index": 0, "temp_c": 1e9}]}}
        ),
        json.dumps({**xid, "id": "x4", "node": "ghost"}),
        good[5],
        json.dumps({**xid, "id": "x5", "time": "2026-11-23T09:50:00Z"}),
        json.dumps({**xid, "id": "x6", "time": "2027-11-23T10:00:00Z"}),
        json.dumps({**xid, "id": "x7", "time": "2026-11-01T10:00:00Z"}),
    ]
    rec = tmp_path / "mixed.jsonl"
    rec.write_text("\n".join(good + bad) + "\n")
    dl = tmp_path / "dead.jsonl"
    p = run("validate", str(rec), "--dead-letters", str(dl), "--json")
    assert p.returncode == 1, p.stderr
    counts = json.loads(p.stdout)["dead_letters"]
    assert counts == {
        r: 1
        for r in [
            "malformed_json",
            "unknown_type",
            "missing_field",
            "invalid_value",
            "absurd_value",
            "unknown_node",
            "duplicate",
            "out_of_order",
            "far_future",
            "stale",
        ]
    }
    assert len(dl.read_text().splitlines()) == 10
    assert run("validate", str(SAMPLE)).returncode == 0


def test_replay_is_deterministic_and_decides(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (a, b):
        p = run("replay", "--offline", str(SAMPLE), "--actuators", "none", "--out", str(out), "--json")
        assert p.returncode == 0, p.stderr
    assert a.read_bytes() == b.read_bytes()
    decisions = [json.loads(x) for x in a.read_text().splitlines()]
    assert_safe_jsonl(a, SAMPLE)
    # The sample's Xid 79 on gpu-node-002 is decisive, but its pool has two nodes: draining one would
    # leave 8 of 16 GPUs (minimum 85%), so the guard holds it with the headroom figures.
    q = [d for d in decisions if d["node"] == "gpu-node-002" and d["trigger"] == "decisive_signal"]
    assert q and q[0]["held"] and not q[0]["executable"]
    headroom = next(c for c in q[0]["guard"] if c["name"] == "headroom")
    assert headroom["passed"] is False and headroom["figures"]["healthy_after"] == 8
    t = [d for d in decisions if d["trigger"] == "tenant_reported_issue"]
    assert t and t[0]["node"] == "gpu-node-001"


def test_policy_check_names_the_offending_key(tmp_path: Path) -> None:
    text = (REPO / "policy" / "default_policy.yaml").read_text().replace("exit: 0.20", "exit: 0.50")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    p = run("policy", "check", str(bad))
    assert p.returncode == 2 and "thresholds" in p.stderr and "hysteresis" in p.stderr
    bad.write_text(
        (REPO / "policy" / "default_policy.yaml")
        .read_text()
        .replace("classes: {}", "classes: {thermal_power: auto}")
    )
    p = run("policy", "check", str(bad))
    assert p.returncode == 2 and "modes.classes.thermal_power" in p.stderr
