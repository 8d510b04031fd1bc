"""The signal catalog as typed data: loaded from catalog.yaml (Xids from NVIDIA's catalog, nvidia_xids.yaml),
overridable per pool/SKU by policy."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from detectors.nvidia_catalog import xid_catalog
from schemas.common import FailureDomain
from schemas.decision import ActionKind

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


class Signal(BaseModel):
    """One signal's meaning. ``threshold``/``per_s`` describe rate signals (count per ``per_s``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    domain: FailureDomain
    weight: Annotated[float, Field(ge=0, le=1)]
    decisive: bool = False
    application: bool = False
    sympathetic: bool = False
    informational: bool = False
    """NVIDIA says to ignore it: kept for the audit trail with no weight, never evidence of a fault."""
    half_life_s: Annotated[float, Field(gt=0)] | None
    action: ActionKind
    source: str
    bad_status: str | None = None
    threshold: float | None = None
    per_s: float | None = None


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    sources: dict[str, str]
    xids: dict[int, Signal]
    unknown_xid: Signal
    samples: dict[str, Signal]
    throttle_thermal_reasons: list[str]
    throttle_power_reasons: list[str]
    conditions: dict[str, Signal]
    workload: dict[str, Signal]
    tenant_categories: dict[str, Signal]
    kernel_patterns: dict[str, Signal]

    @model_validator(mode="after")
    def _sources_named(self) -> Catalog:
        groups: dict[str, dict[Any, Signal]] = {
            "xids": dict(self.xids),
            "samples": self.samples,
            "conditions": self.conditions,
            "workload": self.workload,
            "tenant_categories": self.tenant_categories,
            "kernel_patterns": self.kernel_patterns,
            "unknown_xid": {"": self.unknown_xid},
        }
        for group, entries in groups.items():
            for key, sig in entries.items():
                if sig.source not in self.sources:
                    raise ValueError(f"{group}.{key}.source: {sig.source!r} is not listed under 'sources'")
        return self

    def xid(self, code: int) -> Signal:
        return self.xids.get(code, self.unknown_xid)

    def with_overrides(self, overrides: dict[str, Any]) -> Catalog:
        """A copy with ``{group: {key: {field: value}}}`` merged in (policy's per pool/SKU overrides)."""
        data = self.model_dump(mode="json")
        for group, entries in overrides.items():
            if group not in data or not isinstance(data[group], dict):
                raise ValueError(f"catalog override: unknown group {group!r}")
            for key, fields in entries.items():
                k = str(key)
                target = data[group]
                if k not in target:
                    raise ValueError(f"catalog override: {group}.{k} is not in the catalog")
                target[k] = {**target[k], **fields}
        return Catalog.model_validate(data)


def format_errors(err: ValidationError) -> str:
    """One line per problem, each naming the offending key path."""
    return "\n".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())


def xid_signals() -> dict[int, dict[str, Any]]:
    """Every Xid of NVIDIA's catalog read as a signal (``detectors/nvidia_xids.yaml``)."""
    nv = xid_catalog()
    return {
        code: {"name": e.description, **nv.reading(code), "source": nv.source} for code, e in nv.xids.items()
    }


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The signal catalog; its Xids come from NVIDIA's catalog unless the file lists its own."""
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw.setdefault("xids", xid_signals())
    return Catalog.model_validate(raw)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return load_catalog()
