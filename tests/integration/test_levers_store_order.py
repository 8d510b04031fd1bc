"""The API's lever read-back (``GET /levers``) and its start-up kill-switch seed come from the store's
``control`` table, ordered by each lever's position in the control topic (the offset the sink read
it at, migration 004), never by the time the message claims: a lever dated a year ahead, written
before a genuine one, cannot pin the view. Real chdb store, rows written by the sink's own mapping
(``rows_for_message`` with the record's ``topic/partition@offset`` and the trusted keys: each lever
is sealed by the API's key, as the sink records only those)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from breakfix.api.levers_read import LeverBook
from breakfix.api.state import StoreStateReader
from schemas.control import ControlKind, ControlMessage
from schemas.topics import Topic
from store.base import Store
from store.chdb_backend import open_chdb
from store.migrate import migrate
from store.rows import COLUMNS, group_by_table, rows_for_message
from streams.keys import load_keyring
from streams.settings import StreamSettings
from tests.signing import sealed

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
"""The broker's receive time of every lever here; each is sealed at it too (sealed now, a lever
would be future-dated against a NOW taken when the module was imported, minutes earlier under xdist)."""


@pytest.fixture
def store(chdb_path: Path) -> Iterator[Store]:
    s = open_chdb(chdb_path, f"levers_{uuid.uuid4().hex[:8]}")
    migrate(s)
    yield s
    s.command(f"DROP DATABASE IF EXISTS {s.database}")


def lever(on: bool, claimed: datetime, n: int) -> ControlMessage:
    return ControlMessage(
        id=f"ctl-{n}",
        time=claimed,
        kind=ControlKind.KILLSWITCH,
        scope="global",
        value={"on": on},
        actor="ann",
    )


def sink(store: Store, *records: tuple[ControlMessage, int]) -> None:
    """Write levers as the sink does, each at its offset of partition 0 of the control topic."""
    keyring = load_keyring(StreamSettings())
    rows = [
        row
        for msg, offset in records
        for row in rows_for_message(
            Topic.CONTROL,
            sealed(msg, role="api", issued=NOW.timestamp()),
            f"{Topic.CONTROL}/0@{offset}",
            NOW,
            keyring,
        )
    ]
    assert all(table != "dead_letters" for table, _ in rows)
    for table, table_rows in group_by_table(rows).items():
        store.insert(table, COLUMNS[table], table_rows)


def test_a_future_dated_lever_cannot_pin_the_read_back_or_the_seed(store: Store) -> None:
    forged = lever(True, NOW + timedelta(days=365), 1)  # "on", dated a year ahead, written first
    genuine = lever(False, NOW, 2)  # "off", written after it
    sink(store, (forged, 5), (genuine, 6))
    book = LeverBook(store, threading.Lock())
    [shown] = book.latest("killswitch")
    assert (shown["value"], shown["actor"]) == ({"on": False}, "ann") and shown["time"] < forged.time
    on, _ = StoreStateReader(store).killswitches()["global"]
    assert on is False  # what a restarted API seeds its kill-switch view with

    # This process's own lever: acknowledged at an older offset it loses, at a newer one it wins,
    # whatever either claims.
    book.published(lever(True, NOW + timedelta(days=700), 3), 4)
    assert book.latest("killswitch")[0]["value"] == {"on": False}
    book.published(lever(True, NOW - timedelta(days=1), 4), 7)
    assert book.latest("killswitch")[0]["value"] == {"on": True}


def test_rows_from_before_offsets_were_kept_sort_first(store: Store) -> None:
    """A row the store recorded without an offset (-1: before migration 004) never outranks one
    with a position, however late it claims to be."""
    old = lever(True, NOW + timedelta(days=30), 1)
    store.insert("control", COLUMNS["control"], [
        (old.id, old.time, old.kind.value, old.scope, old.key, '{"on": true}', "ann", "operator", "", -1, -1)
    ])  # fmt: skip
    sink(store, (lever(False, NOW, 2), 0))
    assert LeverBook(store, threading.Lock()).latest("killswitch")[0]["value"] == {"on": False}
    assert StoreStateReader(store).killswitches()["global"][0] is False
