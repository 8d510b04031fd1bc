"""Where benchmark results go: one JSON file per benchmark in ``.reliability/``, beside the
reliability figures the tests record (``tests/reliability/figures.py``), so the figures the docs quote
come from a run and name the command that produced them."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / ".reliability"


def write(name: str, result: dict[str, Any]) -> Path:
    """Store ``result`` as ``.reliability/bench_<name>.json`` (the last run wins), with the command,
    the time and the machine (CPU count, load average: the figures are ratios taken on a shared box)."""
    OUT.mkdir(exist_ok=True)
    ignore = OUT / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")  # run output, never committed
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "result": result,
    }
    path = OUT / f"bench_{name}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path
