"""The guard's state record (policy.guard_record): decoding gives back every field of the state it
encoded, records of the former pickle formats and crafted pickles are refused without being loaded,
and the record holds values only."""

from __future__ import annotations

import pickle
from pathlib import Path

import msgpack
import pytest

from policy.engine import Engine, guard_from_bytes, guard_to_bytes
from policy.guard import GuardState
from policy.guard_record import MAGIC
from policy.model import load_policy
from policy.record_codec import RecordRefused
from schemas.common import NodeState
from schemas.proposal import Placement, Registration
from tests.unit.guard_record_build import T0, comparable, full_guard, placement, proposal
from tests.unit.record_attack import attack, planted

LEGACY = Path(__file__).parent / "guard_record_data" / "legacy_guard.pkl"
"""Written by commit 2a16755 (``guard_to_bytes`` was a plain pickle of the ``GuardState``) from
``full_guard()``: a record a guard upgraded from then would find."""


def test_records_of_the_former_pickle_formats_are_refused_not_loaded() -> None:
    with pytest.raises(RecordRefused, match=r"a pickle .*never loaded"):
        guard_from_bytes(LEGACY.read_bytes())
    with pytest.raises(RecordRefused, match=r"format 1 .*never loaded"):
        guard_from_bytes(b"GR\x01" + pickle.dumps(((), 0.0), protocol=pickle.HIGHEST_PROTOCOL))


@pytest.mark.parametrize("prefix", [b"", b"GR\x01", MAGIC], ids=["plain", "format-1", "current-magic"])
def test_a_crafted_pickle_record_runs_nothing(tmp_path: Path, prefix: bytes) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(RecordRefused):
        guard_from_bytes(prefix + attack(marker))
    assert not planted(marker)


def test_every_field_round_trips() -> None:
    g = full_guard()
    g.seen.move_to_end(next(iter(g.seen)))  # eviction order is insertion order, not sorted order
    g.nodes["gpu-000"] = g.nodes.pop("gpu-000")  # a node registered late
    b = guard_to_bytes(g)
    assert b.startswith(MAGIC)
    again = guard_from_bytes(b)
    assert comparable(again) == comparable(g)
    assert _values(guard_to_bytes(again)) == _values(b), "a restored guard writes the same values"
    times = [(p.time.isoformat(), p.evidence_time.isoformat()) for p in (*g.backlog, *g.waiting)]
    assert [
        (p.time.isoformat(), p.evidence_time.isoformat()) for p in (*again.backlog, *again.waiting)
    ] == times
    assert any(t.endswith("+02:00") for t, _ in times), "an explicit offset is kept, not only the instant"
    assert all(isinstance(i.placement, Placement) for i in again.nodes.values())
    assert len({id(i.placement) for i in again.nodes.values()}) == len(again.nodes), "one each, not shared"


def test_record_is_values_only_and_smaller() -> None:
    g = full_guard(nodes=400)
    b = guard_to_bytes(g)
    _values(b)  # plain values only: an extension type would raise
    assert len(b) < 0.6 * len(pickle.dumps(g, protocol=pickle.HIGHEST_PROTOCOL))


def test_empty_guard_round_trips() -> None:
    g = GuardState()
    assert comparable(guard_from_bytes(guard_to_bytes(g))) == comparable(g)


def test_not_a_guard_record_is_refused() -> None:
    with pytest.raises(RecordRefused, match="not a current guard record"):
        guard_from_bytes(b'{"nodes": {}}')
    with pytest.raises(RecordRefused, match="malformed guard record"):
        guard_from_bytes(MAGIC + msgpack.packb({"nodes": {}}))
    good = guard_to_bytes(full_guard())
    with pytest.raises(RecordRefused, match="corrupt guard record"):
        guard_from_bytes(good[:-7])


def _values(record: bytes) -> object:
    """A record's payload as plain values (no extension types)."""

    def no_ext(code: int, data: bytes) -> None:
        raise AssertionError(f"extension type {code} in a record")

    return msgpack.unpackb(record[len(MAGIC) :], ext_hook=no_ext, strict_map_key=False)


def test_records_follow_every_change_between_snapshots() -> None:
    """Rows are reused between snapshots: after each change (a decision moves a node, a registration
    moves it to another rack, a node joins) the record still decodes to the live state, in the same
    process as the records before it and for another guard holding the same node names."""
    engine = Engine(load_policy(None))
    g = engine.new_guard()
    other = full_guard()
    for i in range(40):
        engine.guard_step(g, Registration(node=f"gpu-{i:03d}", time=T0, placement=placement(i)))
    guard_to_bytes(g)
    for i in range(40):
        if i % 3 == 0:  # moved: a new placement object with other values
            reg = Registration(node=f"gpu-{i:03d}", time=T0, placement=placement(i + 7))
            engine.guard_step(g, reg)
        else:
            engine.guard_step(g, proposal(i, NodeState.QUARANTINED if i % 2 else NodeState.SUSPECT))
        assert comparable(guard_from_bytes(guard_to_bytes(g))) == comparable(g), f"after step {i}"
        assert comparable(guard_from_bytes(guard_to_bytes(other))) == comparable(other)
    assert {i.state for i in g.nodes.values()} >= {NodeState.HEALTHY, NodeState.QUARANTINED}
    g.nodes["gpu-001"].state = NodeState.ESCALATED  # set in place, as Guard._track does
    g.nodes["gpu-002"].placement = placement(30)
    again = guard_from_bytes(guard_to_bytes(g))
    assert again.nodes["gpu-001"].state is NodeState.ESCALATED
    assert again.nodes["gpu-002"].placement == placement(30)


CURRENT = Path(__file__).parent / "guard_record_data" / "format2_guard.bin"
"""``guard_to_bytes(full_guard())`` as format 2 wrote it when it was introduced."""


def test_a_committed_format_2_record_still_reads_and_writes_back_byte_for_byte() -> None:
    """The layout of format 2 is fixed: a change must come with a new version byte."""
    b = CURRENT.read_bytes()
    g = guard_from_bytes(b)
    assert comparable(g) == comparable(full_guard())
    assert guard_to_bytes(g) == b
