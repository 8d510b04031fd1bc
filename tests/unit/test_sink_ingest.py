"""Fetched records become column chunks (one per partition run; guard-only marks skipped but
committed past); the telemetry batch is built without a loop per record; and its deduplication
token is a function of exactly what the batch holds: the same records give the same token (a
retried or spool-drained batch is dropped by ClickHouse), any changed byte, value boundary or
coordinate gives another (a different batch is never mistaken for it)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Message

from streams.sink import chunks_from_messages, ingest_table, ingest_token
from streams.store.spool import Chunk


def _chunks() -> list[Chunk]:
    return [
        Chunk("breakfix.events", "p.breakfix.events", 3, [10, 11], [1_000, 1_001], [b'{"id":"a"}', b"ab"]),
        Chunk("breakfix.events", "q.breakfix.events", 0, [7], [2_000], [b""]),
        Chunk("breakfix.events", "p.breakfix.events", 1, [5], [3_000], [b"c"]),
    ]


def test_ingest_table_repeats_each_chunk_coordinates_per_record() -> None:
    table = ingest_table(_chunks())
    assert table.column_names == ["raw", "topic", "partition", "offset", "received_ms"]
    assert table.column("raw").to_pylist() == [b'{"id":"a"}', b"ab", b"", b"c"]
    p, q = "p.breakfix.events", "q.breakfix.events"
    assert table.column("topic").to_pylist() == [p, p, q, p]
    assert table.column("partition").to_pylist() == [3, 3, 0, 1]
    assert table.column("offset").to_pylist() == [10, 11, 7, 5]
    assert table.column("received_ms").to_pylist() == [1_000, 1_001, 2_000, 3_000]


def test_token_is_stable_for_the_same_records() -> None:
    first = ingest_token(ingest_table(_chunks()))
    rebuilt = [c._replace(values=[bytes(v) for v in c.values], offsets=list(c.offsets)) for c in _chunks()]
    assert ingest_token(ingest_table(rebuilt)) == first
    assert first.startswith("events_ingest-4-")


def test_token_changes_with_any_byte_boundary_or_coordinate() -> None:
    base = ingest_token(ingest_table(_chunks()))
    variants = [
        [_chunks()[0]._replace(values=[b'{"id":"b"}', b"ab"]), *_chunks()[1:]],  # one byte
        [_chunks()[0]._replace(values=[b'{"id":"a"}a', b"b"]), *_chunks()[1:]],  # same bytes, cut elsewhere
        [_chunks()[0]._replace(offsets=[10, 12]), *_chunks()[1:]],  # an offset
        [_chunks()[0]._replace(partition=4), *_chunks()[1:]],  # a partition
        [_chunks()[0]._replace(timestamps=[1_000, 1_002]), *_chunks()[1:]],  # a broker timestamp
        [_chunks()[0]._replace(topic="r.breakfix.events"), *_chunks()[1:]],  # a topic
    ]
    tokens = {ingest_token(ingest_table(v)) for v in variants}
    assert base not in tokens and len(tokens) == len(variants)


def _msg(topic: str, partition: int, offset: int, value: bytes = b"{}", kind: bytes | None = None) -> Message:
    headers: list[tuple[str, str | bytes | None]] | None = [("breakfix-kind", kind)] if kind else None
    return Message(topic=topic, partition=partition, offset=offset, value=value, headers=headers,
                   timestamp=(1, 1_000 + offset))  # fmt: skip


def test_fetched_messages_become_one_chunk_per_partition_run() -> None:
    ev, pr = "x.breakfix.events", "x.breakfix.proposals"
    messages = [
        _msg(ev, 0, 4, b"a"), _msg(ev, 0, 5, b"b"),
        Message(error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)),  # logged, carries no record
        _msg(ev, 1, 9, b"c"),
        _msg(pr, 0, 2, b"mark", kind=b"progress"), _msg(pr, 0, 3, b'{"id":"p"}'),
        _msg(pr, 0, 4, b"reg", kind=b"registration"),
    ]  # fmt: skip
    got = chunks_from_messages(messages, "x.")
    assert [(c.name, c.partition, c.offsets, c.timestamps, c.values) for c in got.chunks] == [
        ("breakfix.events", 0, [4, 5], [1_004, 1_005], [b"a", b"b"]),
        ("breakfix.events", 1, [9], [1_009], [b"c"]),
        ("breakfix.proposals", 0, [3], [1_003], [b'{"id":"p"}']),
    ]
    assert got.skipped == 2  # the guard's progress mark and registration: no row, committed past
    assert got.offsets == {(ev, 0): 6, (ev, 1): 10, (pr, 0): 5}


def test_a_fatal_consumer_error_stops_the_sink() -> None:
    with pytest.raises(RuntimeError, match="Kafka consumer failed"):
        chunks_from_messages([Message(error=KafkaError(KafkaError._FATAL, fatal=True))], "")
