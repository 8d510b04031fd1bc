"""The diagnostic bundle: read-only commands per section, their outputs in one tar.gz with a manifest.

Sections are what playbooks ask for (``thermal``, ``ecc_counters``, ``nvlink``, ...). A command that
is missing or fails is recorded in the manifest, never fatal: a partial bundle on a sick node is
worth more than none. Every command is bounded by what is left of the step's budget.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

from actuators.base import PermanentError, TemporaryError
from actuators.commands import CommandRunner

SECTIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "summary": (("nvidia-smi", "-q"),),
    "thermal": (("nvidia-smi", "-q", "-d", "TEMPERATURE"),),
    "power": (("nvidia-smi", "-q", "-d", "POWER"),),
    "clocks": (("nvidia-smi", "-q", "-d", "CLOCK"),),
    "throttle_reasons": (("nvidia-smi", "-q", "-d", "PERFORMANCE"),),
    "sensors": (("sensors",),),
    "ecc_counters": (("nvidia-smi", "-q", "-d", "ECC"),),
    "row_remap": (("nvidia-smi", "-q", "-d", "ROW_REMAPPER"),),
    "nvlink": (("nvidia-smi", "nvlink", "-s"), ("nvidia-smi", "nvlink", "-e")),
    "topology": (("nvidia-smi", "topo", "-m"),),
    "nic": (("ip", "-s", "link"), ("ibstat",)),
    "dmesg": (("dmesg", "-T"),),
    "xid_history": (("dmesg", "-T"),),
    "nvidia_bug_report": (("nvidia-smi", "-q"), ("nvidia-smi", "topo", "-m"), ("dmesg", "-T")),
}
DEFAULT_SECTIONS = ("summary", "thermal", "ecc_counters", "row_remap", "nvlink", "dmesg")
PER_COMMAND_S = 60.0


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def collect_bundle(runner: CommandRunner, dest: Path, sections: list[str], timeout_s: float) -> Path:
    """Write ``dest`` (a .tar.gz) and return it. Unknown sections are a PermanentError (a typo in a
    playbook must not silently produce an empty bundle)."""
    wanted = list(sections) or list(DEFAULT_SECTIONS)
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise PermanentError(f"unknown bundle sections {unknown}; known: {sorted(SECTIONS)}")
    deadline = time.monotonic() + timeout_s
    manifest = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for section in wanted:
            for i, argv in enumerate(SECTIONS[section]):
                left = deadline - time.monotonic()
                entry = {"section": section, "command": " ".join(argv)}
                if left <= 0:
                    manifest.append({**entry, "status": "skipped: step budget spent"})
                    continue
                try:
                    out = runner.run(argv, min(left, PER_COMMAND_S))
                except (PermanentError, TemporaryError) as err:
                    manifest.append({**entry, "status": f"not collected: {err.detail}"})
                    continue
                text = out.stdout
                if section == "xid_history":
                    text = "".join(line + "\n" for line in out.stdout.splitlines() if "Xid" in line)
                _add(tar, f"{section}/{i}-{argv[0]}.txt", text.encode())
                manifest.append({**entry, "status": "ok" if out.ok else out.describe()})
        _add(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
    return dest
