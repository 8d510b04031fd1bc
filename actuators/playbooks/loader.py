"""Load and select playbooks. Errors name the file and the offending key, so a bad catalog edit is
found at start-up, never halfway through a repair.

>>> catalog = load_catalog()
>>> catalog.select("gpu_hardware", "gpu_reset").name
'xid-ecc-conditional-drain-gpu-reset'
>>> catalog.select("gpu_memory", "gpu_reset", gpu=3).name
'gpu-reset-only'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from actuators.base import Actuator
from actuators.playbooks.model import Playbook


class PlaybookError(ValueError):
    """A catalog file that does not parse or validate; the message names file and key."""


def parse_playbook(text: str, origin: str) -> Playbook:
    """One playbook from YAML text; ``origin`` (a file name) prefixes every error."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PlaybookError(f"{origin}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise PlaybookError(f"{origin}: expected a mapping at the top level")
    try:
        return Playbook.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()
        )
        raise PlaybookError(f"{origin}: {problems}") from err


class Catalog:
    """The playbooks by name, with the selection rule the workflow engine uses."""

    def __init__(self, playbooks: Iterable[Playbook]) -> None:
        self.playbooks: dict[str, Playbook] = {}
        for pb in playbooks:
            if pb.name in self.playbooks:
                raise PlaybookError(f"{pb.name}: defined twice")
            self.playbooks[pb.name] = pb

    @property
    def version(self) -> str:
        """A digest of every (name, version): changes whenever any playbook's version changes."""
        names = ",".join(f"{n}@{p.version}" for n, p in sorted(self.playbooks.items()))
        return hashlib.sha256(names.encode()).hexdigest()[:12]

    def get(self, name: str) -> Playbook:
        try:
            return self.playbooks[name]
        except KeyError:
            raise PlaybookError(f"no playbook named {name!r}") from None

    def select(self, failure_class: str, action: str, gpu: int | None = None) -> Playbook | None:
        """The playbook for a decision: it must serve the class and the action; a per-GPU playbook
        needs a decision that names a GPU; then the highest ``priority`` wins, ties by name."""
        fits = [
            p
            for p in self.playbooks.values()
            if failure_class in p.failure_classes
            and action in p.actions
            and (p.scope == "node" or gpu is not None)
        ]
        return min(fits, key=lambda p: (-p.priority, p.name), default=None)

    def unsupported(self, actuators: Mapping[str, Actuator]) -> list[str]:
        """Steps whose actuator kind is registered but does not know the operation (kinds not
        registered here are reported by the engine when a playbook needing them is run)."""
        return [
            f"{pb.name}: step {s.name}: {s.actuator} has no operation {s.operation!r}"
            for pb in self.playbooks.values()
            for s in [*pb.steps, *pb.rollback]
            if s.actuator in actuators and not actuators[s.actuator].supports(s.operation)
        ]


def load_catalog(directory: Path | None = None) -> Catalog:
    """Every ``*.yaml`` in ``directory`` (default: the catalog shipped with the package). A file's
    name must be its playbook's name, so one playbook lives in exactly one file."""
    root = directory or Path(str(resources.files("actuators.playbooks") / "catalog"))
    playbooks = []
    for path in sorted(root.glob("*.yaml")):
        pb = parse_playbook(path.read_text(), path.name)
        if pb.name != path.stem:
            raise PlaybookError(f"{path.name}: name: {pb.name!r} differs from the file name")
        playbooks.append(pb)
    return Catalog(playbooks)
