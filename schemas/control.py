"""Control messages on the compacted control topic: the operator's levers over automation.

A message names its lever (``kind``), what the lever applies to (``scope``, a typed
:class:`~schemas.vocab.Scope` on the wire as ``global`` or ``<kind>:<name>``) and the lever's
setting (``value``, whose shape each kind fixes in a payload model below). A message whose scope or
value does not fit its kind is refused when it is parsed, so no reader ever guesses at a lever.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.common import SCHEMA_VERSION, EventTime
from schemas.decision import ActionKind, Mode
from schemas.vocab import ControlKind as ControlKind
from schemas.vocab import FailureClass, Scope, ScopeKind


class _Payload(BaseModel):
    """A lever's setting. Unknown keys are kept (a newer writer may add some), never required."""

    model_config = ConfigDict(frozen=True, extra="allow")


class Switch(_Payload):
    """Kill switch, emergency mode, exclusion: on unless it says ``on: false``."""

    on: bool = True


class ModeSetting(_Payload):
    mode: Mode


class ApprovalGrant(_Payload):
    """A person's approval. ``node``, ``failure_class`` and ``action`` name what was approved (the API
    always sends them); ``expires_at`` bounds it in time; ``approved: false`` withdraws it."""

    node: str | None = None
    failure_class: FailureClass | None = None
    action: ActionKind | None = None
    approved: bool = True
    expires_at: AwareDatetime | None = None


class BreakerReset(_Payload):
    """``backlog``: release the proposals the open breaker held (``resume``) or retire them."""

    resolution: Literal["discard_backlog", "resume"] | None = None
    backlog: Literal["resume", "discard"] = "resume"


Payload = Switch | ModeSetting | ApprovalGrant | BreakerReset

PAYLOADS: dict[ControlKind, type[Payload]] = {
    ControlKind.KILLSWITCH: Switch,
    ControlKind.EMERGENCY: Switch,
    ControlKind.EXCLUSION: Switch,
    ControlKind.MODE: ModeSetting,
    ControlKind.APPROVAL: ApprovalGrant,
    ControlKind.BREAKER_RESET: BreakerReset,
}

SCOPES: dict[ControlKind, frozenset[ScopeKind]] = {
    ControlKind.KILLSWITCH: frozenset({ScopeKind.GLOBAL, ScopeKind.POOL}),
    ControlKind.EMERGENCY: frozenset({ScopeKind.GLOBAL}),
    ControlKind.EXCLUSION: frozenset({ScopeKind.POOL, ScopeKind.NODE}),
    ControlKind.MODE: frozenset({ScopeKind.CLASS}),
    ControlKind.APPROVAL: frozenset({ScopeKind.NODE, ScopeKind.DECISION}),
    ControlKind.BREAKER_RESET: frozenset({ScopeKind.GLOBAL}),
}
"""The scopes each lever accepts: a kill switch is global or per pool, a mode is per failure class,
an approval names a node or a decision, an exclusion a pool or a node."""


class ControlMessage(BaseModel):
    """One lever setting. ``scope`` is ``global``, ``pool:<name>``, ``class:<failure class>``,
    ``node:<node>`` or ``decision:<id>``, as the kind allows (a kill switch: global or pool; a mode:
    class; an approval: node or decision; an exclusion: pool or node). ``value`` is the kind's payload
    (kill switch, emergency, exclusion: ``on``; mode: ``mode``; approval: ``node``, ``failure_class``,
    ``action``, ``approved``, ``expires_at``; breaker reset: ``backlog``). The topic is compacted on
    ``key`` (``kind:scope``) so the latest lever per scope survives."""

    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=200)]
    time: EventTime
    kind: ControlKind
    scope: Annotated[str, Field(min_length=1, max_length=256)] = "global"
    value: dict[str, Any] = Field(default_factory=dict)
    actor: Annotated[str, Field(min_length=1, max_length=200)]
    role: str = "operator"
    reason: str = ""
    schema_version: int = SCHEMA_VERSION

    @model_validator(mode="after")
    def _fits_its_kind(self) -> ControlMessage:
        target = Scope.parse(self.scope)
        allowed = SCOPES[self.kind]
        if target.kind not in allowed:
            raise ValueError(
                f"a {self.kind.value} lever applies to {', '.join(sorted(allowed))}, not {target.kind.value}"
            )
        if target.kind is ScopeKind.CLASS:
            FailureClass(target.name)
        PAYLOADS[self.kind].model_validate(self.value)
        return self

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.scope}"

    @property
    def target(self) -> Scope:
        """The typed scope (validated when the message was parsed)."""
        return Scope.parse(self.scope)

    @property
    def payload(self) -> Payload:
        """The typed value for this kind (validated when the message was parsed)."""
        return PAYLOADS[self.kind].model_validate(self.value)
