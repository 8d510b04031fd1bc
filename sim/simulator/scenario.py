"""Scenario files: YAML data, validated by pydantic, turned into injectors.

A file names itself and lists ``faults``; each entry's ``kind`` picks its model, and every error
names the file and the offending key (``faults.0.duration``). Shipped scenarios live in
``sim/scenarios`` and are addressed by file name, stem, or ``all``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.simulator.alloc import Allocator
from sim.simulator.faults.base import Fault
from sim.simulator.faults.fleetwide import DriverRolloutSpec, LeafNcclSpec, XidStormSpec
from sim.simulator.faults.gpu import (
    DbeSpec,
    NvlinkCrcSpec,
    RepeatOffenderSpec,
    SbeRisingSpec,
    ThermalFanSpec,
    Xid79Spec,
)
from sim.simulator.faults.node import FlappingSpec, SilentAgentSpec, TenantReportSpec
from sim.simulator.faults.noise import AppXidSpec, SingleSbeSpec, TempSpikeSpec
from sim.simulator.faults.spec import Context, FaultSpec
from sim.simulator.fleet import Fleet

SHIPPED = Path(__file__).resolve().parent.parent / "scenarios"

AnySpec = Annotated[
    Xid79Spec
    | DbeSpec
    | SbeRisingSpec
    | ThermalFanSpec
    | NvlinkCrcSpec
    | RepeatOffenderSpec
    | LeafNcclSpec
    | DriverRolloutSpec
    | XidStormSpec
    | SilentAgentSpec
    | FlappingSpec
    | TenantReportSpec
    | TempSpikeSpec
    | SingleSbeSpec
    | AppXidSpec,
    Field(discriminator="kind"),
]

# Entries that claim whole pools, leaves or racks are placed before single-node entries, so a
# single-node fault never lands inside a pool that a rollout later needs whole.
_PLACEMENT_ORDER: dict[type[FaultSpec], int] = {DriverRolloutSpec: 0, LeafNcclSpec: 1, XidStormSpec: 2}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    description: str = ""
    faults: Annotated[list[AnySpec], Field(min_length=1)]


def _explain(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        lines.append(f"{path.name}: {loc or '(top level)'}: {e['msg']}")
    return "; ".join(lines)


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as err:
        raise ScenarioError(f"cannot read scenario {p}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ScenarioError(f"{p.name}: not valid YAML: {err}") from err
    try:
        return Scenario.model_validate(doc)
    except ValidationError as err:
        raise ScenarioError(_explain(p, err)) from err


def shipped() -> list[Path]:
    return sorted(SHIPPED.glob("*.yaml"))


def resolve(names: list[str]) -> list[Path]:
    """File paths for ``--scenario`` values: a path, a shipped scenario's stem, or ``all``."""
    out: list[Path] = []
    for name in names:
        if name == "all":
            out += shipped()
            continue
        p = Path(name)
        if p.is_file():
            out.append(p)
        elif (SHIPPED / f"{name}.yaml").is_file():
            out.append(SHIPPED / f"{name}.yaml")
        else:
            known = ", ".join(s.stem for s in shipped())
            raise ScenarioError(f"no scenario {name!r}: not a file and not a shipped scenario ({known}, all)")
    return list(dict.fromkeys(out))


@dataclass
class Injection:
    faults: list[Fault]
    scenarios: list[str]


def build(scenarios: list[Scenario], fleet: Fleet, seed: int, start: int, end: int) -> Injection:
    """Injectors for every entry, placed on the fleet without overlap (pool/leaf/storm claims first)."""
    alloc = Allocator(fleet, seed)
    entries = [(s, i, spec) for s in scenarios for i, spec in enumerate(s.faults)]
    entries.sort(key=lambda e: _PLACEMENT_ORDER.get(type(e[2]), 9))
    faults: list[Fault] = []
    for scenario, i, spec in entries:
        ctx = Context(fleet, seed, start, end, scenario.name, f"{scenario.name}#{i}", alloc)
        faults += spec.build(ctx)
    return Injection(faults, [s.name for s in scenarios])
