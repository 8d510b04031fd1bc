"""``breakfix demo`` as a user runs it, on a small fleet: the summary's figures agree with the store it
wrote, the loop closed (an executed quarantine was repaired, validated and returned), and no process
it started is left running - after a normal run and after a Ctrl-C in the middle of the feed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BREAKFIX = str(Path(sys.executable).parent / "breakfix")


def holders(workdir: Path) -> list[str]:
    """Processes with a file open under ``workdir`` (every child logs there through stdout)."""
    found = []
    root = str(workdir.resolve())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith(root) for fd in fds):
                found.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()[:200]!r}")
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], float]:
    work = tmp_path_factory.mktemp("demo")
    argv = [BREAKFIX, "demo", "--nodes", "40", "--hours", "1", "--feed-seconds", "30"]
    began = time.monotonic()
    done = subprocess.run(
        [*argv, "--workdir", str(work), "--json"], capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return work, json.loads(done.stdout), time.monotonic() - began


def test_summary_matches_the_store(demo: tuple[Path, dict[str, Any], float]) -> None:
    from store.dsn import open_store

    work, summary, _ = demo
    labels = [json.loads(line) for line in (work / "labels.jsonl").read_text().splitlines() if line]
    assert summary["faults"]["injected"] == sum(1 for x in labels if x["truth"] == "fault") > 0
    store = open_store(f"chdb:///{work / 'chdb'}")
    try:

        def one(sql: str) -> Any:
            return store.query(sql.replace("$db", store.database)).rows[0][0]

        assert sum(r["decisions"] for r in summary["decisions"]) == one(
            "SELECT count() FROM $db.decisions FINAL"
        )
        auto = one("SELECT countIf(executable) FROM $db.decisions FINAL WHERE to_state = 'Quarantined'")
        assert summary["quarantines"]["executed"] == auto
        runs = one("SELECT count() FROM $db.actions FINAL WHERE step = 'workflow' AND status = 'succeeded'")
        assert summary["workflows"].get("succeeded", 0) == runs
        letters = one("SELECT count() FROM $db.dead_letters FINAL")
        assert sum(summary["dead_letters"].values()) == letters
        healthy = one(
            "SELECT count() FROM $db.decisions FINAL WHERE from_state = 'Validating' AND to_state = 'Healthy'"
        )
    finally:
        store.close()
    # The loop closed at least once: an executed quarantine was repaired, validated and returned.
    assert auto >= 1 and runs >= 1 and healthy >= 1
    assert summary["mttr"]["repaired"] >= 1 and summary["mttr"]["median_min"] > 0
    assert summary["quarantines"]["false_positives"] <= summary["quarantines"]["quarantines"]
    assert summary["report"] and Path(summary["report"]).exists(), summary["note"]


def test_demo_leaves_nothing_running_and_fits_its_budget(demo: tuple[Path, dict[str, Any], float]) -> None:
    work, summary, elapsed = demo
    assert holders(work) == []
    assert elapsed < 180, f"the small demo took {elapsed:.0f}s"
    assert summary["timings_s"]["total"] <= elapsed


def test_ctrl_c_mid_feed_stops_every_child(tmp_path: Path) -> None:
    argv = [
        BREAKFIX,
        "demo",
        "--nodes",
        "40",
        "--hours",
        "1",
        "--feed-seconds",
        "60",
        "--workdir",
        str(tmp_path),
    ]
    # Started the way a shell without job control starts `make demo &`: SIGINT ignored on entry. The
    # demo must still stop on it, and promptly (it used to play its whole feed first).
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 120
        ready = tmp_path / "logs" / "actuators.log"
        while not (ready.exists() and "ready" in ready.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        assert len(holders(tmp_path)) >= 4, "broker, worker, sink and actuator stage must be running"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert holders(tmp_path) == []
