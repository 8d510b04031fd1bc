"""Reading what ``score`` judges: decision JSONL (schema-validated, bad lines counted, never fatal)
and, from a recording, the fleet inventory (pool, GPUs per node) for capacity figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.decision import Decision
from schemas.recording import iter_lines


@dataclass
class DecisionFile:
    decisions: list[Decision] = field(default_factory=list)
    bad_lines: int = 0
    first_error: str = ""


def read_decisions(path: str | Path) -> DecisionFile:
    """Decisions sorted by time (stable); unreadable lines are counted and skipped."""
    out = DecisionFile()
    for n, raw in iter_lines(path):
        try:
            out.decisions.append(Decision.model_validate_json(raw))
        except ValidationError as err:
            out.bad_lines += 1
            if not out.first_error:
                out.first_error = f"{path}:{n}: {err.errors(include_url=False)[0]['msg']}"
    out.decisions.sort(key=lambda d: d.time)
    return out


@dataclass(frozen=True)
class NodeInfo:
    pool: str
    rack: str
    gpus: int


def iter_dicts(path: str | Path) -> Iterator[dict[str, Any]]:
    """Envelope dicts of a recording, fast (orjson, no models); lines that are not objects are skipped.

    Scoring reads what the simulator wrote and only needs a few fields; the contract is enforced where
    events enter the pipeline, so here a bad line is skipped rather than dead-lettered.
    """
    for _, raw in iter_lines(path):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("data"), dict):
            yield obj


def inventory_of(obj: dict[str, Any]) -> NodeInfo | None:
    data = obj["data"]
    pool, rack, gpus = data.get("pool"), data.get("rack"), data.get("gpus")
    if isinstance(pool, str) and isinstance(rack, str) and isinstance(gpus, int) and gpus >= 0:
        return NodeInfo(pool, rack, gpus)
    return None


def read_inventory(path: str | Path) -> dict[str, NodeInfo]:
    """node → inventory, from the recording's node.inventory events (the last one of a node wins)."""
    out: dict[str, NodeInfo] = {}
    for obj in iter_dicts(path):
        if obj.get("type") == "node.inventory" and isinstance(obj.get("node"), str):
            info = inventory_of(obj)
            if info is not None:
                out[obj["node"]] = info
    return out
