"""Where machine records live: a Protocol, and a JSON-file store (one file per machine).

A file per machine keeps writes small and atomic (write a temp file, then ``os.replace``), and a
person can read or back up the store with ordinary tools. A site with its own inventory implements
:class:`MachineStore` over it instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from actuators.health.model import MachineRecord


class MachineStore(Protocol):
    def get(self, machine_id: str) -> MachineRecord | None: ...

    def put(self, record: MachineRecord) -> None: ...

    def all(self) -> list[MachineRecord]: ...


class JsonMachineStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, machine_id: str) -> Path:
        MachineRecord(machine_id=machine_id)  # validates the id, so it can never escape the directory
        return self.root / f"{machine_id}.json"

    def get(self, machine_id: str) -> MachineRecord | None:
        path = self._path(machine_id)
        if not path.exists():
            return None
        return MachineRecord.model_validate_json(path.read_bytes())

    def put(self, record: MachineRecord) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(record.model_dump_json(indent=2))
            os.replace(tmp, self._path(record.machine_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def all(self) -> list[MachineRecord]:
        return [MachineRecord.model_validate_json(p.read_bytes()) for p in sorted(self.root.glob("*.json"))]
