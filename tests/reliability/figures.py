"""Reliability figures: printed with a fixed prefix (visible under ``pytest -s``) and merged into
``.reliability/figures.json`` so the evidence pages' numbers come from a run, not from memory."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / ".reliability"
PREFIX = "RELIABILITY figure:"


def record(name: str, **figures: Any) -> dict[str, Any]:
    """Print ``name``'s figures and store them under ``name`` in the JSON file (last run wins)."""
    print(f"{PREFIX} {name}: {json.dumps(figures, sort_keys=True, default=str)}", flush=True)
    OUT.mkdir(exist_ok=True)
    ignore = OUT / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")  # run output, never committed
    path = OUT / "figures.json"
    # `make test` runs tests on two xdist workers: merge under a lock and replace atomically, so two
    # workers recording at once neither lose a figure nor read a half-written file.
    with open(OUT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = figures
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(path)
    return figures
