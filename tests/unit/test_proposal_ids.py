"""Proposal ids stay within the contract's 200 characters however many repair cycles a node goes
through (an action result's id embeds the decision id it answers, which embeds the proposal id)."""

from __future__ import annotations

from policy.engine import _short


def test_short_event_ids_are_kept_verbatim() -> None:
    assert _short("sim3-96e") == "sim3-96e"


def test_nested_ids_are_bounded_and_stable() -> None:
    eid = "e1"
    for _ in range(6):  # six repair cycles: result id -> decision id -> result id ...
        eid = f"act-d-gpu-00073:{_short(eid)}:decisive_signal:started"
        assert len(f"d-gpu-00073:{_short(eid)}:decisive_signal:released") < 200
    assert _short(eid) == _short(eid) and _short(eid) != _short(eid + "x")
