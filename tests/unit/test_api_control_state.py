"""The API's lever mirror: the latest lever per scope wins by its time, whichever order the API's
own send, the control topic and the store's record deliver them in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from breakfix.api.control import ControlState
from schemas.control import ControlKind, ControlMessage

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lever(scope: str, on: bool, minute: int) -> ControlMessage:
    return ControlMessage(
        id=f"c-{scope}-{minute}",
        time=T0 + timedelta(minutes=minute),
        kind=ControlKind.KILLSWITCH,
        scope=scope,
        value={"on": on},
        actor="ops",
    )


def test_an_older_lever_read_late_does_not_undo_a_newer_one() -> None:
    state = ControlState()
    state.apply(lever("global", True, 2))  # applied when this API sent it
    state.apply(lever("global", False, 1))  # an older message, read from the topic afterwards
    assert state.killswitch_on(None)
    state.apply(lever("global", True, 2))  # the API's own message coming back: no change
    state.apply(lever("global", False, 3))
    assert not state.killswitch_on(None)


def test_scopes_are_ordered_separately_and_seeds_obey_the_same_rule() -> None:
    state = ControlState()
    state.apply(lever("pool:train", True, 5))
    state.apply(lever("global", False, 9))
    state.seed({"pool:train": (False, T0), "pool:infer": (True, T0)})  # the store's older record
    assert state.snapshot() == {"global": False, "pools": {"train": True, "infer": True}}
    assert state.killswitch_on("train") and state.killswitch_on("infer") and not state.killswitch_on("x")
