"""What every scenario entry shares: when it starts, how long it lasts, where it lands.

Offsets and durations are absolute (``"2h"``) or relative to the recording (``"25%"``: a quarter of
the way in), so one scenario file fits a one-hour test run and a 24-hour benchmark alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sim.simulator.alloc import AllocationError, Allocator
from sim.simulator.clock import parse_duration
from sim.simulator.faults.base import Fault
from sim.simulator.fleet import Fleet, Node
from sim.simulator.labels import Expected, Label, ScopeValue, Truth
from sim.simulator.rand import randint, unit


def _offset(value: str) -> str:
    text = value.strip()
    if text.endswith("%"):
        pct = float(text[:-1])
        if not 0 <= pct < 100:
            raise ValueError(f"{value!r}: a relative offset lies in [0%, 100%)")
    else:
        parse_duration(text)
    return text


def _duration(value: str) -> str:
    text = value.strip()
    amount = float(text[:-1]) if text.endswith("%") else parse_duration(text)
    if amount <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    return text


Offset = Annotated[str, AfterValidator(_offset)]
Duration = Annotated[str, AfterValidator(_duration)]


@dataclass
class Context:
    """Everything an entry needs to become injectors: the fleet, the clock and a node allocator."""

    fleet: Fleet
    seed: int
    start: int
    end: int
    scenario: str
    key: str
    alloc: Allocator

    def offset(self, text: str) -> int:
        if text.endswith("%"):
            return self.start + int((self.end - self.start) * float(text[:-1]) / 100)
        t = self.start + int(parse_duration(text))
        if t >= self.end:
            raise AllocationError(f"{self.key}: offset {text} lies beyond the end of the recording")
        return t

    def seconds(self, text: str) -> int:
        """A duration, absolute (``"2h"``) or as a share of the recording (``"10%"``)."""
        if text.endswith("%"):
            return int((self.end - self.start) * float(text[:-1]) / 100)
        return int(parse_duration(text))

    def until(self, start: int, duration: str | None) -> int | None:
        """Absolute end of a fault, or None when it outlives the recording."""
        if duration is None:
            return None
        t = start + self.seconds(duration)
        return t if t < self.end else None

    def draw(self, *keys: object) -> float:
        return unit(self.seed, self.key, *keys)

    def pick(self, lo: int, hi: int, *keys: object) -> int:
        return randint(self.seed, lo, hi, self.key, *keys)

    def label(
        self,
        node: Node,
        gpu: int | None,
        cls: str,
        start: int,
        end: int | None,
        truth: Truth,
        expected: Expected,
        *,
        decisive: bool = False,
        scope: dict[str, ScopeValue] | None = None,
        repair: str | None = None,
        persistent: bool = True,
        detail: str = "",
        suffix: str = "",
    ) -> Label:
        return Label(
            id=f"{self.key}:{node.name}{f':{gpu}' if gpu is not None else ''}{suffix}",
            node=node.name,
            gpu=gpu,
            failure_class=cls,
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC) if end is not None else None,
            scenario=self.scenario,
            truth=truth,
            decisive=decisive,
            expected=expected,
            scope=scope,
            repair=repair,
            persistent=persistent,
            detail=detail,
        )


class FaultSpec(BaseModel):
    """Fields every entry accepts. Unknown keys are refused, so a typo cannot silently do nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Offset = "25%"
    duration: Duration | None = None
    count: Annotated[int, Field(ge=1, le=10_000)] = 1
    pool: str | None = None

    def build(self, ctx: Context) -> list[Fault]:
        raise NotImplementedError
