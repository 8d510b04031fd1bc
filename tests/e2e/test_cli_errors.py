"""Every CLI error is one or two lines (what happened, what to do next); a traceback only with
--debug. Run through the installed console script against a port nothing listens on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka.embedded_broker import free_port

EXE = str(Path(sys.executable).with_name("breakfix"))


def _run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKFIX_")}
    env["BREAKFIX_CONTEXT"] = str(tmp / "no-context.yaml")
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ("topics", "create", "--broker", "127.0.0.1:{port}"),
        ("produce", "{file}", "--broker", "127.0.0.1:{port}"),
        ("nodes", "--server", "http://127.0.0.1:{port}"),
    ],
    ids=["topics-create", "produce", "nodes"],
)
def test_a_dead_service_is_two_lines_that_name_the_next_step(args: tuple[str, ...], tmp_path: Path) -> None:
    recording = tmp_path / "one.jsonl"
    recording.write_text('{"id":"k1","type":"gpu.xid","source":"t","time":"2026-01-05T00:00:00Z",'
                         '"node":"gpu01","data":{"gpu":0,"xid":79}}\n')  # fmt: skip
    argv = [a.format(port=free_port(), file=recording) for a in args]
    done = _run(*argv, tmp=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 2, done.stderr
    assert lines[0].startswith("error:") and lines[1].startswith("hint:") and "breakfix up" in lines[1]
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = _run("--debug", "topics", "create", "--broker", f"127.0.0.1:{free_port()}", tmp=tmp_path)
    assert done.returncode != 0 and "Traceback" in done.stderr
