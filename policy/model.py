"""The policy file: one YAML document, validated by pydantic, whose version every decision carries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from detectors.catalog import Catalog, default_catalog
from detectors.fusion import FusionConfig
from schemas.decision import ActionKind, Mode
from schemas.vocab import FAILURE_CLASSES

DEFAULT_POLICY = Path(__file__).with_name("default_policy.yaml")
Fraction = Annotated[float, Field(ge=0, le=1)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_M):
    suspect_enter: Fraction
    exit: Fraction
    healthy_hold_s: Annotated[float, Field(ge=0)]
    validation_hold_s: Annotated[float, Field(ge=0)]
    act: dict[ActionKind, Fraction]
    lemon_half_life_s: Annotated[float, Field(gt=0)]
    lemon_discount_per_repair: Fraction
    lemon_rma_after: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _hysteresis(self) -> Thresholds:
        if self.exit >= self.suspect_enter:
            raise ValueError("exit must be below suspect_enter (hysteresis)")
        return self


class Fusion(_M):
    single_cap: Fraction
    model_cap: Fraction
    corroboration_factor: Fraction
    change_window_s: Annotated[float, Field(ge=0)]
    app_job_gpus: Annotated[int, Field(ge=1)]


class Modes(_M):
    default: Mode
    classes: dict[str, Mode] = Field(default_factory=dict)


class Headroom(_M):
    default_min_healthy_fraction: Fraction
    pools: dict[str, Fraction] = Field(default_factory=dict)
    """pool → minimum fraction of its GPUs that must stay in service."""


class Concurrency(_M):
    per_rack: Annotated[int, Field(ge=1)]
    per_pool: Annotated[int, Field(ge=1)]
    per_sku: Annotated[int, Field(ge=1)]


class Exclusions(_M):
    labels: dict[str, str] = Field(default_factory=dict)
    pools: list[str] = Field(default_factory=list)


class RetryBudget(_M):
    max_repairs: Annotated[int, Field(ge=0)]
    window_s: Annotated[float, Field(gt=0)]


class RateLimit(_M):
    max_executable_per_hour: Annotated[int, Field(ge=0)]


class Breaker(_M):
    window_s: Annotated[float, Field(gt=0)]
    max_fraction: Fraction
    max_nodes: Annotated[int, Field(ge=1)]
    min_nodes_for_fraction: Annotated[int, Field(ge=1)]


class BlastRadius(_M):
    window_s: Annotated[float, Field(gt=0)]
    scopes: dict[str, Annotated[int, Field(ge=2)]]

    @model_validator(mode="after")
    def _known_scopes(self) -> BlastRadius:
        unknown = set(self.scopes) - {"rack", "leaf", "job", "pool", "sku"}
        if unknown:
            raise ValueError(
                f"unknown blast-radius scope(s) {sorted(unknown)}; use rack, leaf, job, pool, sku"
            )
        return self


class Policy(_M):
    version: Annotated[str, Field(min_length=1)]
    thresholds: Thresholds
    fusion: Fusion
    single_signal_classes: list[str]
    modes: Modes
    auto_allowed: list[str]
    approval_required_for: list[ActionKind]
    headroom: Headroom
    concurrency: Concurrency
    exclusions: Exclusions
    retry_budget: RetryBudget
    rate_limit: RateLimit
    breaker: Breaker
    blast_radius: BlastRadius
    stale_cutoff_s: Annotated[float, Field(gt=0)]
    max_wait_s: Annotated[float, Field(gt=0)]
    tick_s: Annotated[float, Field(gt=0)]
    auto_repair_enabled: bool
    catalog_overrides: dict[str, dict[str, dict[str, dict[str, Any]]]] = Field(default_factory=dict)
    """``{"pool:<name>" | "sku:<name>": {group: {key: {field: value}}}}``."""

    @model_validator(mode="after")
    def _classes_known(self) -> Policy:
        for where, names in (
            ("single_signal_classes", self.single_signal_classes),
            ("auto_allowed", self.auto_allowed),
            ("modes.classes", list(self.modes.classes)),
        ):
            bad = [n for n in names if n not in FAILURE_CLASSES]
            if bad:
                raise ValueError(
                    f"{where}: unknown failure class(es) {bad}; known: {', '.join(FAILURE_CLASSES)}"
                )
        for cls, mode in self.modes.classes.items():
            if mode is Mode.AUTO and cls not in self.auto_allowed:
                raise ValueError(f"modes.classes.{cls}: auto is not allowed for {cls} (not in auto_allowed)")
        if self.modes.default is Mode.AUTO:
            raise ValueError("modes.default: auto is never a default; switch classes to auto one by one")
        for scope in self.catalog_overrides:
            if not scope.startswith(("pool:", "sku:")):
                raise ValueError(f"catalog_overrides.{scope}: scope must be 'pool:<name>' or 'sku:<name>'")
        return self

    def mode_for(self, failure_class: str) -> Mode:
        return self.modes.classes.get(failure_class, self.modes.default)

    def fusion_config(self) -> FusionConfig:
        return FusionConfig(**self.fusion.model_dump())

    def min_healthy_fraction(self, pool: str) -> float:
        return self.headroom.pools.get(pool, self.headroom.default_min_healthy_fraction)

    def catalog_for(self, pool: str, sku: str) -> Catalog:
        """The catalog with this SKU's then this pool's overrides applied (callers cache it)."""
        cat = default_catalog()
        for scope in (f"sku:{sku}", f"pool:{pool}"):
            if scope in self.catalog_overrides:
                cat = cat.with_overrides(self.catalog_overrides[scope])
        return cat


class PolicyError(ValueError):
    """A policy file that does not validate; the message names every offending key."""


def parse_policy(raw: dict[str, Any], origin: str = "<policy>") -> Policy:
    try:
        policy = Policy.model_validate(raw)
        for scope in policy.catalog_overrides:
            kind, _, name = scope.partition(":")
            policy.catalog_for(name if kind == "pool" else "", name if kind == "sku" else "")
        return policy
    except ValidationError as err:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()]
        raise PolicyError(f"{origin} is not a valid policy:\n" + "\n".join(lines)) from None
    except ValueError as err:
        raise PolicyError(f"{origin} is not a valid policy:\n  {err}") from None


def load_policy(path: str | Path | None = None) -> Policy:
    p = Path(path) if path else DEFAULT_POLICY
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise PolicyError(f"{p} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{p}: a policy is a YAML mapping at the top level")
    return parse_policy(raw, str(p))
