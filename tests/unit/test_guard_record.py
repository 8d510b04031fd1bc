"""The guard's state record (policy.guard_record): records written in the former format (a plain
pickle of the ``GuardState``) are still read, field for field."""

from __future__ import annotations

from pathlib import Path

from policy.engine import guard_from_bytes
from tests.unit.guard_record_build import comparable, full_guard

LEGACY = Path(__file__).parent / "guard_record_data" / "legacy_guard.pkl"
"""Written by commit 2a16755 (``guard_to_bytes`` was a plain pickle of the ``GuardState``) from
``full_guard()``: 24 nodes in every state, 2 proposals in the backlog and 4 waiting, every field set."""


def test_former_plain_pickle_record_is_read() -> None:
    b = LEGACY.read_bytes()
    assert b.startswith(b"\x80")
    assert comparable(guard_from_bytes(b)) == comparable(full_guard())
