"""The guard re-checks a mode lever against the policy itself: a lever (even one the API signed) may
switch a class to auto only where ``auto_allowed`` lists it."""

from __future__ import annotations

from schemas.control import ControlKind
from schemas.decision import Mode
from tests.unit.test_guard import check, ctl, fleet, place, prop


def test_a_mode_lever_cannot_put_a_class_the_policy_forbids_in_auto() -> None:
    g, s = fleet(40)
    g.step(s, ctl(ControlKind.MODE, "class:thermal_power", mode="auto"))  # not in auto_allowed
    d = g.step(s, prop("n0", 10, place(0, "r0"), cls="thermal_power"))[0]
    assert d.mode is not Mode.AUTO and not d.executable
    assert check(d, "mode") == {"mode": d.mode.value}


def test_a_mode_lever_may_put_an_allowed_class_in_auto() -> None:
    g, s = fleet(40)
    g.step(s, ctl(ControlKind.MODE, "class:gpu_memory", mode="auto"))  # in auto_allowed
    d = g.step(s, prop("n0", 10, place(0, "r0"), cls="gpu_memory"))[0]
    assert d.mode is Mode.AUTO
