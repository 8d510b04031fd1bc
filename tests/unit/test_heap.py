"""The heap keeper moves long-lived objects out of the collector's way and still frees reference
cycles among them at its scheduled full collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.pipeline.heap import HeapKeeper


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_freeze_takes_objects_out_of_full_collections_and_the_full_run_frees_their_cycles() -> None:
    keeper = HeapKeeper(freeze_s=10.0, full_s=3600.0, now=0.0)
    obj = _Cyclic()
    ref = weakref.ref(obj)
    assert keeper.tick(1.0) is None
    assert gc.get_freeze_count() > 0
    del obj
    gc.collect()
    assert ref() is not None, "a frozen cycle is not walked by an ordinary full collection"
    assert keeper.tick(5.0) is None and ref() is not None, "nothing due before freeze_s"
    took = keeper.tick(3600.0)
    assert took is not None and took >= 0.0
    assert ref() is None, "the scheduled full collection frees cycles among frozen objects"
    assert gc.get_freeze_count() > 0, "and freezes what is left"


def test_collections_walk_only_what_is_newer_than_the_last_freeze() -> None:
    old = [[i] for i in range(1000)]
    HeapKeeper(freeze_s=10.0, full_s=3600.0, now=0.0).tick(1.0)
    new = [[i] for i in range(1000)]
    walked = {id(o) for o in gc.get_objects()}  # every generation a collection walks
    assert not any(id(o) in walked for o in old), "frozen objects are in no generation"
    assert all(id(o) in walked for o in new)
