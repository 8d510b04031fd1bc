"""One contract suite over every state record codec (``policy/*_record.py``: each module with a
``MAGIC``). State records come back from changelog topics anyone with broker access can write, so
every codec promises the same: a decoded record encodes to the very same bytes (nothing lost or
reordered), encoding is deterministic, and anything that is not a current record of its own kind
(empty, truncated, bytes flipped, garbage, the other kind's record, a pickle) is refused with
``RecordRefused``, never another exception and never loaded."""

from __future__ import annotations

import contextlib
import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from policy import guard_record, node_record
from policy.engine import NodeRuntime
from policy.model import load_policy
from policy.record_codec import RecordRefused
from sim.replay import OfflineReplay
from tests.unit.guard_record_build import full_guard
from tests.unit.record_attack import attack, planted

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Codec:
    """A codec's test parameters: ``sample`` builds a populated state the real code produced."""

    module: Any
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    sample: Callable[[], Any]


def _node_runtime() -> NodeRuntime:
    """The busiest node of the shipped sample recording after an offline replay."""
    replay = OfflineReplay(load_policy())
    for _ in replay.run(REPO / "breakfix" / "data" / "sample.jsonl"):
        pass
    return max(replay.nodes.values(), key=lambda rt: len(rt.to_bytes()))


CODECS: dict[str, Codec] = {
    "node": Codec(node_record, lambda rt: rt.to_bytes(), NodeRuntime.from_bytes, _node_runtime),
    "guard": Codec(guard_record, guard_record.encode, guard_record.decode, full_guard),
}


@pytest.fixture(scope="module", params=sorted(CODECS))
def codec(request: pytest.FixtureRequest) -> tuple[Codec, bytes]:
    c = CODECS[request.param]
    return c, c.encode(c.sample())


def test_every_record_module_is_in_the_suite() -> None:
    found = {
        p.stem.removesuffix("_record")
        for p in (REPO / "policy").glob("*_record.py")
        if hasattr(importlib.import_module(f"policy.{p.stem}"), "MAGIC")
    }
    assert found == set(CODECS)
    assert len({c.module.MAGIC for c in CODECS.values()}) == len(CODECS), "two kinds share a magic"


def test_round_trip_gives_the_same_bytes(codec: tuple[Codec, bytes]) -> None:
    c, record = codec
    assert c.encode(c.decode(record)) == record


def test_encoding_is_deterministic(codec: tuple[Codec, bytes]) -> None:
    c, record = codec
    assert c.encode(c.sample()) == record


def test_truncated_records_are_refused(codec: tuple[Codec, bytes]) -> None:
    c, record = codec
    for cut in sorted({0, 1, 2, 3, 4, 5, 8, *range(16, len(record), max(1, len(record) // 64))}):
        with pytest.raises(RecordRefused):
            c.decode(record[:cut])


def test_damaged_records_are_refused_or_decode_to_a_value(codec: tuple[Codec, bytes]) -> None:
    """A flipped byte inside the packed value may still be a valid record (a different number);
    whatever it is, decoding either refuses it or returns a state: no other exception escapes."""
    c, record = codec
    rng = random.Random(7)
    magic = len(c.module.MAGIC)
    for _ in range(300):
        b = bytearray(record)
        i = rng.randrange(magic, len(b))
        b[i] ^= 1 << rng.randrange(8)
        with contextlib.suppress(RecordRefused):
            c.decode(bytes(b))


def test_garbage_and_the_other_kinds_record_are_refused(codec: tuple[Codec, bytes]) -> None:
    c, _ = codec
    rng = random.Random(11)
    for n in (1, 7, 64, 4096):
        with pytest.raises(RecordRefused):
            c.decode(c.module.MAGIC + bytes(rng.randrange(256) for _ in range(n)))
    for other in CODECS.values():
        if other is not c:
            with pytest.raises(RecordRefused):
                c.decode(other.encode(other.sample()))


def test_a_pickle_is_refused_without_being_loaded(codec: tuple[Codec, bytes], tmp_path: Path) -> None:
    c, _ = codec
    marker = tmp_path / "ran"
    for payload in (attack(marker), c.module.MAGIC + attack(marker)):
        with pytest.raises(RecordRefused):
            c.decode(payload)
    assert not planted(marker)
