"""The API's lever mirror: the latest lever per scope wins by its position in the control topic (its
offset), never by the time it claims, whichever order the API's own send, the control topic and the
store's record deliver them in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from breakfix.api.control import ControlState
from schemas.control import ControlKind, ControlMessage

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lever(scope: str, on: bool, claimed_minute: int) -> ControlMessage:
    return ControlMessage(
        id=f"c-{scope}-{claimed_minute}-{on}",
        time=T0 + timedelta(minutes=claimed_minute),
        kind=ControlKind.KILLSWITCH,
        scope=scope,
        value={"on": on},
        actor="ops",
    )


def test_a_lever_read_late_does_not_undo_one_written_after_it() -> None:
    state = ControlState()
    state.apply(lever("global", True, 2), 7)  # applied when this API sent it (acknowledged at 7)
    state.apply(lever("global", False, 3), 6)  # written before it, read from the topic afterwards
    assert state.killswitch_on(None)
    state.apply(lever("global", True, 2), 7)  # the API's own message coming back: no change
    state.apply(lever("global", False, 1), 8)
    assert not state.killswitch_on(None)


def test_claimed_time_neither_pins_nor_hides_a_lever() -> None:
    state = ControlState()
    state.apply(lever("global", True, 60 * 24 * 365), 0)  # dated a year ahead
    state.apply(lever("global", False, -60 * 24 * 365), 1)  # dated a year back, written after it
    assert not state.killswitch_on(None)


def test_scopes_are_ordered_separately_and_the_store_seed_fills_only_gaps() -> None:
    state = ControlState()
    state.apply(lever("pool:train", True, 5), 3)
    state.apply(lever("global", False, 9), 4)
    state.seed({"pool:train": (False, T0 + timedelta(days=9)), "pool:infer": (True, T0)})
    assert state.snapshot() == {"global": False, "pools": {"train": True, "infer": True}}
    assert state.killswitch_on("train") and state.killswitch_on("infer") and not state.killswitch_on("x")
    state.apply(lever("pool:infer", False, 0), 0)  # the topic's record replaces the store's seed
    assert not state.killswitch_on("infer")
