"""The sink's telemetry batch is built without a loop per record, and its deduplication token is
a function of exactly what the batch holds: the same records give the same token (a retried or
spool-drained batch is dropped by ClickHouse), any changed byte, value boundary or coordinate gives
another (a different batch is never mistaken for it)."""

from __future__ import annotations

import orjson
import pyarrow as pa

from store.spool import Chunk, decode, encode
from streams.sink.stage import binary_column, ingest_table, ingest_token, prepare


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


def test_a_spooled_batch_is_prepared_as_it_would_have_been_inserted() -> None:
    """The consuming side prepares a batch once; a batch spooled and drained later is prepared again
    from the spool file and must give the same table, token and rows, or the retry double-counts."""
    audit = orjson.dumps({"id": "au-1", "time": "2025-03-01T00:00:00Z"})  # not an AuditRecord: a dead letter
    chunks = [*_chunks(), Chunk("breakfix.audit", "p.breakfix.audit", 0, [4], [5_000], [audit])]
    direct = prepare(chunks)
    drained = prepare(decode(encode(chunks)))
    assert direct.telemetry is not None and drained.telemetry is not None
    assert drained.telemetry.equals(direct.telemetry)
    assert drained.token == direct.token == ingest_token(ingest_table(_chunks()))
    assert drained.rows == direct.rows
    assert list(direct.rows) == ["dead_letters"] and len(direct.rows["dead_letters"]) == 1


def test_a_batch_without_telemetry_has_no_table_or_token() -> None:
    batch = prepare([Chunk("breakfix.audit", "breakfix.audit", 0, [1], [5_000], [b"{"])])
    assert batch.telemetry is None and batch.token == ""
    assert list(batch.rows) == ["dead_letters"]


def test_binary_column_holds_the_values_in_pieces_under_the_limit() -> None:
    values = [b"abc", b"", b"de", b"f" * 10, b"g"]
    whole = binary_column(values)
    assert whole.num_chunks == 1 and whole.to_pylist() == values
    cut = binary_column(values, limit=5)
    assert cut.to_pylist() == values
    assert [c.to_pylist() for c in cut.chunks] == [[b"abc", b"", b"de"], [b"f" * 10], [b"g"]]
    assert binary_column([]).to_pylist() == []


def test_token_is_the_one_a_value_by_value_arrow_column_gives() -> None:
    """A batch inserted by the previous build (``pa.array`` per value) and retried by this one after
    a crash must carry the same token, or ClickHouse would write it twice."""
    table = ingest_table(_chunks())
    values = table.column("raw").to_pylist()
    before = table.set_column(0, "raw", pa.chunked_array([pa.array(values, pa.binary())]))
    assert ingest_token(before) == ingest_token(table)
