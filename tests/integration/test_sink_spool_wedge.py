"""The sink's spool never wedges behind one batch (the real sink core on embedded chdb).

A batch whose events span more than 100 months tripped ClickHouse's ``max_partitions_per_insert_block``
(``events`` is partitioned by month): refused, spooled, and refused again on every drain, with every
later batch queued behind it for good. Such a batch is now written; and a batch the store keeps
refusing for a reason of its own is set aside after a few tries so the rest drain.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from store.chdb_backend import open_chdb
from store.migrate import migrate
from store.spool import Chunk, Spool
from streams.sink.stage import SinkCore

pytestmark = pytest.mark.integration
TOPIC = "breakfix.events"


def _events(ids: list[str], months: int = 1, first_offset: int = 0) -> Chunk:
    values = []
    for k, i in enumerate(ids):
        y, m = 2000 + (k % months) // 12, (k % months) % 12 + 1
        values.append(orjson.dumps({"id": i, "type": "node.condition", "source": "test", "node": "n1",
                                    "time": f"{y}-{m:02d}-03T00:00:00Z",
                                    "data": {"condition": "Ready", "status": "True"}}))  # fmt: skip
    offsets = list(range(first_offset, first_offset + len(ids)))
    return Chunk(TOPIC, TOPIC, 0, offsets, [1_700_000_000_000] * len(ids), values)


@pytest.fixture
def core(chdb_path: Path, chdb_database: str, tmp_path: Path) -> SinkCore:
    store = open_chdb(chdb_path, chdb_database)
    migrate(store)
    return SinkCore(store, Spool(tmp_path / "spool"))


def _count(core: SinkCore, where: str = "1") -> int:
    db = core.store.database
    return int(core.store.query(f"SELECT count() FROM {db}.events FINAL WHERE {where}").rows[0][0])


def test_a_batch_spanning_150_months_is_written_not_spooled(core: SinkCore) -> None:
    batch = _events([f"e{i}" for i in range(300)], months=150)
    assert core.flush([batch]) == "inserted"
    assert _count(core) == 300 and core.spool.files() == []
    db = core.store.database
    parts = core.store.query(f"SELECT uniqExact(partition) FROM system.parts WHERE database = '{db}' "
                             "AND table = 'events' AND active").rows[0][0]  # fmt: skip
    assert parts == 150


def test_a_batch_the_store_keeps_refusing_is_set_aside_and_the_rest_drain(core: SinkCore) -> None:
    db = core.store.database
    core.store.command(f"ALTER TABLE {db}.events ADD CONSTRAINT no_poison CHECK id != 'poison'")
    poisoned, good = _events(["poison", "p2"]), _events(["g1", "g2"], first_offset=10)
    assert core.flush([poisoned]) == "spooled"  # refused at once: spooled, as an outage would be
    assert core.flush([good]) == "spooled"  # behind it, in order
    for _ in range(SinkCore.SET_ASIDE_AFTER):
        core.drain()
    assert core.spool.files() == [], "the spool drained past the refused batch"
    assert _count(core, "id IN ('g1', 'g2')") == 2 and _count(core, "id = 'poison'") == 0
    [kept] = list(core.spool.refused_dir.glob("*"))
    assert [c.values for c in core.spool.load(kept)] == [poisoned.values], "set aside, not lost"
