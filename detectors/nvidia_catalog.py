"""NVIDIA's Xid and NVSwitch SXid catalogs as typed data (nvidia_xids.yaml, nvidia_sxids.yaml).

Each Xid keeps NVIDIA's own words (mnemonic, immediate and investigatory resolution) next to the
product's reading of one occurrence. The loader enforces the rule the product is held to: the action
one occurrence proposes is never costlier than NVIDIA's immediate resolution on the ladder
ignore < restart the application < GPU reset < node reboot < hardware ticket, unless the entry states
its deviation. A violation is refused at load, naming the Xid.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.common import FailureDomain
from schemas.decision import ActionKind

XIDS_PATH = Path(__file__).with_name("nvidia_xids.yaml")
SXIDS_PATH = Path(__file__).with_name("nvidia_sxids.yaml")
PEER_DIFFERENCES_PATH = Path(__file__).with_name("peer_differences.yaml")
"""Where the product differs from NVSentinel's and gpud's published Xid mappings, and why."""

LADDER = ("ignore", "restart the application", "GPU reset", "node reboot", "hardware ticket")
"""The ladder of costs the catalog is judged on, cheapest first."""

NVIDIA_RUNG: dict[str, int] = {
    "": 0,
    "IGNORE": 0,
    "XID_154": 0,  # informational: the line names the real action (decoded per line)
    "RESTART_APP": 1,
    "CHECK_UVM": 1,
    "WORKFLOW_XID_45": 1,  # not solo: follow the other Xid; solo: restart fabric manager
    "RESET_GPU": 2,
    "RESET_FABRIC": 2,
    "WORKFLOW_XID_48": 2,  # row-remap workflow: a GPU reset applies a pending remap
    "WORKFLOW_NVLINK5_ERR": 2,  # per unit and severity: RESET_GPU or IGNORE (decoded per line)
    "RESTART_BM": 3,
    "RESTART_VM": 3,
    "CONTACT_SUPPORT": 4,
    "CHECK_MECHANICALS": 4,
    "UPDATE_SWFW": 4,
    "WORKFLOW_NVLINK_ERR": 4,
    "CHECK_FM_CONFIG": 4,
    "CHECK_LINK_MECHANICAL_CONNECTIONS": 4,
    "REPORT_ISSUE": 4,
}
"""NVIDIA's resolution names (the Xid catalog's and NVSentinel's SXid table's) on the ladder."""

PRODUCT_RUNG: dict[ActionKind, int] = {
    ActionKind.NONE: 0,
    ActionKind.OBSERVE: 0,
    ActionKind.GPU_RESET: 2,
    ActionKind.REBOOT: 3,
    ActionKind.DRAIN: 3,
    ActionKind.TICKET: 4,
    ActionKind.REIMAGE: 4,
    ActionKind.RMA: 4,
}


class ProductReading(BaseModel):
    """What one occurrence means to the product (fields of :class:`detectors.catalog.Signal`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: FailureDomain | None = None
    weight: Annotated[float, Field(ge=0, le=1)] | None = None
    half_life_s: Annotated[float, Field(gt=0)] | None = None
    action: ActionKind | None = None
    decisive: bool | None = None
    application: bool | None = None
    sympathetic: bool | None = None
    informational: bool | None = None


class XidEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mnemonic: str
    description: str
    immediate: str
    investigatory: str
    product: ProductReading = ProductReading()
    deviation: str | None = None
    """Why the product's action is costlier than NVIDIA's immediate resolution (required if it is)."""


class NvLink5(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severities: dict[str, str]
    units: dict[int, list[str]]


class LineDeviation(BaseModel):
    """A per-line rule under which one line proposes more than its Xid's immediate resolution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    xid: int
    rule: str
    action: ActionKind
    why: str


class XidCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    source: str
    resolutions: dict[str, ProductReading]
    nvlink5: NvLink5
    line_deviations: list[LineDeviation] = []
    xids: dict[int, XidEntry]

    @model_validator(mode="after")
    def _judged_on_the_ladder(self) -> XidCatalog:
        for code, e in self.xids.items():
            if e.immediate not in NVIDIA_RUNG or e.immediate not in self.resolutions:
                raise ValueError(f"xids.{code}.immediate: {e.immediate!r} has no rung or no default reading")
            action = self.reading(code)["action"]
            if PRODUCT_RUNG[action] > NVIDIA_RUNG[e.immediate] and not e.deviation:
                raise ValueError(
                    f"xids.{code}: action {action.value!r} is costlier than NVIDIA's {e.immediate or 'no'} "
                    "resolution; state the deviation or choose a cheaper action"
                )
        return self

    def reading(self, code: int) -> dict[str, Any]:
        """The product's reading of one Xid: its resolution's default with its own overrides."""
        e = self.xids[code]
        base = self.resolutions[e.immediate].model_dump(exclude_unset=True)
        own = e.product.model_dump(exclude_unset=True)
        if own.get("action", ActionKind.NONE) != ActionKind.NONE:
            base.pop("informational", None)  # an entry that proposes an action is not informational
        return {**base, **own}


SxidFatality = Literal["always", "potential", "never"]


class SxidEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    fatal: SxidFatality | None = None
    mnemonic: str | None = None
    immediate: str | None = None
    fatality: Literal["FATAL", "NONFATAL"] | None = None


class SxidCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    source: str
    immediate_actions: dict[str, ActionKind]
    fatal_signal: ProductReading
    nonfatal_signal: ProductReading
    sxids: dict[int, SxidEntry]

    @model_validator(mode="after")
    def _immediates_known(self) -> SxidCatalog:
        for code, e in self.sxids.items():
            if e.immediate is not None and e.immediate not in self.immediate_actions:
                raise ValueError(f"sxids.{code}.immediate: {e.immediate!r} is not under immediate_actions")
            if e.immediate is not None and e.immediate not in NVIDIA_RUNG:
                raise ValueError(f"sxids.{code}.immediate: {e.immediate!r} has no rung on the ladder")
        return self


def _load(path: Path) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


@lru_cache(maxsize=1)
def xid_catalog() -> XidCatalog:
    return XidCatalog.model_validate(_load(XIDS_PATH))


@lru_cache(maxsize=1)
def sxid_catalog() -> SxidCatalog:
    return SxidCatalog.model_validate(_load(SXIDS_PATH))
