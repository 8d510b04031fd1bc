"""Every command block the README and the docs mark as runnable runs as written.

A fenced block preceded by ``<!-- runnable -->`` is run with bash (``set -euo pipefail``), the
runnable blocks of one file in order in one shell, as a reader pasting them would; a file that
starts the local stack gets its own ports, directory and context file, and ``breakfix down`` runs
at the end whatever happened. In the README and the operator pages every fenced block carries a
marker saying what it is (runnable, production, output, sample, config, not-run, diagram), so an
unmarked command block is itself a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka.embedded_broker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
MARKED = [REPO / "README.md", *sorted((REPO / "docs" / "operate").glob("*.md"))]
ALL_DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
MARKERS = ("runnable", "production", "output", "sample", "config", "not-run", "diagram")
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
_MARKER = re.compile(r"<!--\s*([\w-]+)[^>]*-->\s*$")


def blocks(path: Path) -> list[tuple[str | None, str]]:
    """(marker or None, code) of every fenced block in ``path``."""
    text = path.read_text()
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARKER.search(before)
        out.append((mark.group(1) if mark else None, m.group(2)))
    return out


def runnable(path: Path) -> str:
    return "\n".join(code for mark, code in blocks(path) if mark == "runnable")


@pytest.mark.parametrize("path", MARKED, ids=lambda p: p.name)
def test_every_block_says_what_it_is(path: Path) -> None:
    unmarked = [code.splitlines()[0] for mark, code in blocks(path) if mark not in MARKERS]
    assert unmarked == [], f"{path.name}: blocks without a marker ({', '.join(MARKERS)})"


@pytest.mark.parametrize("path", [p for p in ALL_DOCS if runnable(p)], ids=lambda p: p.name)
def test_runnable_blocks_run_as_written(path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKFIX_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        BREAKFIX_CONTEXT=str(tmp_path / "context.yaml"),
        BREAKFIX_UP_DIR=str(tmp_path / "local"),
        BREAKFIX_UP_BROKER_PORT=str(free_port()),
        BREAKFIX_UP_API_PORT=str(free_port()),
        COLUMNS="100",
    )
    script = "set -euo pipefail\ntrap 'breakfix down >/dev/null 2>&1 || true' EXIT\n" + runnable(path)
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=480
    )
    assert done.returncode == 0, f"{path.name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
