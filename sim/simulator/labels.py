"""Ground truth: one label per injected fault, change, storm member, silent agent or noise item.

``breakfix score`` judges decisions against these. The failure-class vocabulary is shared with the
policy (``FAILURE_CLASSES``): a label's class must be one of them or the label is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from schemas.vocab import FAILURE_CLASSES

HARDWARE_CLASSES: frozenset[str] = frozenset({"gpu_hardware", "gpu_memory", "thermal_power", "nvlink_fabric"})

Truth = Literal["fault", "noise", "change", "storm", "silent"]
Expected = Literal["quarantine", "incident", "rollback", "monitoring", "none"]
ScopeValue = str | int | list[str]


def _known_class(value: str) -> str:
    if value not in FAILURE_CLASSES:
        raise ValueError(f"unknown failure class {value!r}; known: {', '.join(FAILURE_CLASSES)}")
    return value


class Label(BaseModel):
    """One ground-truth item. ``end`` is null when the fault outlives the recording (never repaired)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str
    node: str
    gpu: int | None = None
    failure_class: Annotated[str, AfterValidator(_known_class)] = Field(alias="class")
    start: AwareDatetime
    end: AwareDatetime | None = None
    scenario: str
    truth: Truth
    decisive: bool = False
    expected: Expected
    scope: dict[str, ScopeValue] | None = None
    repair: str | None = None
    """The cheapest action that truly clears the fault (simulated actuators validate against it)."""
    persistent: bool = True
    """A persistent fault survives actions cheaper than ``repair``; a transient one clears on any."""
    detail: str = ""

    def active(self, t: datetime, before_s: float = 0.0, after_s: float = 0.0) -> bool:
        """Whether ``t`` falls inside [start - before_s, end + after_s] (open-ended when ``end`` is null)."""
        ts = t.timestamp()
        if ts < self.start.timestamp() - before_s:
            return False
        return self.end is None or ts <= self.end.timestamp() + after_s

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


def write_labels(path: str | Path, labels: Iterable[Label]) -> int:
    n = 0
    with open(path, "wb") as f:
        for label in labels:
            f.write(label.to_json() + b"\n")
            n += 1
    return n


def read_labels(path: str | Path) -> Iterator[Label]:
    """Labels from JSONL; a bad line raises ValueError naming the line (labels are our own output)."""
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Label.model_validate_json(line)
            except ValueError as err:
                raise ValueError(f"{path}:{n}: not a label: {err}") from err
