"""One contract suite over every registered actuator kind, real and simulated (river's
``check_estimator`` idea): each kind's case (``actuator_cases.py``) builds the real actuator against
the real component or the in-repo stand-in, and every one is checked for the promises of
``actuators/base.py``: it serves its registered name and verbs, refuses a verb it lacks without
acting, refuses a mutation under the kill switch and changes nothing, and a repeated step (same
decision and step: the idempotency key) changes nothing the second time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actuators.base import PermanentError, Refused, StepSpec
from actuators.registry import kinds
from actuators.simulated import SimulatedActuator, SimulatedFleet
from tests.contracts.actuator_cases import CASES, Case, ctx, step
from tests.fakes.workflow_doubles import SwitchSafety

pytestmark = pytest.mark.integration
KINDS = sorted(kinds())


def test_every_registered_kind_has_a_case() -> None:
    assert sorted(CASES) == KINDS, "add the new kind's case to tests/contracts/actuator_cases.py"


@pytest.fixture(params=[(k, real) for k in KINDS for real in (True, False)],
                ids=lambda p: f"{p[0]}-{'real' if p[1] else 'simulated'}")  # fmt: skip
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    name, real = request.param
    if real:
        with CASES[name](request, tmp_path) as c:
            yield c
        return
    registered = kinds()[name]
    writes = sorted(registered.operations - registered.read_only)
    fleet = SimulatedFleet(now=lambda: 1.0e9)
    mutating = step(name, writes[0]) if writes else None
    yield Case(SimulatedActuator(name, fleet), "n1", mutating)


def test_serves_its_registered_name_and_every_verb(case: Case) -> None:
    registered = kinds()[case.actuator.name]
    assert all(case.actuator.supports(op) for op in registered.operations)
    assert not case.actuator.supports("no_such_verb")


def test_a_verb_it_lacks_is_refused_without_acting(case: Case) -> None:
    """A step that bypassed validation (a crafted or stale journal entry) fails permanently."""
    name = case.actuator.name
    bad = StepSpec.model_construct(
        name="bad", actuator=name, operation="no_such_verb", mutating=True, timeout_s=5, params={}
    )
    with pytest.raises(PermanentError):
        case.actuator.execute(bad, ctx(case, SwitchSafety()))


def test_kill_switch_refuses_a_mutation_and_changes_nothing(case: Case) -> None:
    if case.mutating is None or not case.guarded:
        pytest.skip(f"{case.actuator.name}: no mutation the kill switch guards")
    with pytest.raises(Refused):
        case.actuator.execute(case.mutating, ctx(case, SwitchSafety(killswitch=True)))
    with pytest.raises(Refused):
        case.actuator.execute(case.mutating, ctx(case, SwitchSafety(excluded_nodes={case.node})))
    after = case.actuator.execute(case.mutating, ctx(case, SwitchSafety()))
    assert after.changed, "the refused attempts must have left the work undone"


def test_a_repeated_step_changes_nothing_the_second_time(case: Case) -> None:
    if case.mutating is None:
        pytest.skip(f"{case.actuator.name}: read-only kind")
    first = case.actuator.execute(case.mutating, ctx(case, SwitchSafety()))
    before = case.effects() if case.effects else None
    again = case.actuator.execute(case.mutating, ctx(case, SwitchSafety()))
    assert first.changed
    if case.replays:
        assert again == first, "a replayed request answers with its first result"
    else:
        assert not again.changed, (first.detail, again.detail)
    if case.effects is not None:
        assert case.effects() == before, "the repeat changed the infrastructure again"
