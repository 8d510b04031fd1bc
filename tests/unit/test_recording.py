from __future__ import annotations

import gzip
from pathlib import Path

from schemas.deadletter import DeadLetter
from schemas.recording import RecordingWriter, read_recording
from tests.conftest import SAMPLE


def test_gzip_and_plain_read_the_same(tmp_path: Path) -> None:
    gz = tmp_path / "s.jsonl.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    plain = [getattr(x, "id", None) for x in read_recording(SAMPLE)]
    zipped = [getattr(x, "id", None) for x in read_recording(gz)]
    assert plain == zipped and len(plain) == 20 and None not in plain


def test_bad_lines_are_dead_lettered_and_reading_goes_on(tmp_path: Path) -> None:
    rec = tmp_path / "mixed.jsonl"
    lines = SAMPLE.read_bytes().splitlines()
    rec.write_bytes(b"\n".join([lines[0], b"garbage", lines[1], b"", lines[2]]) + b"\n")
    out = list(read_recording(rec))
    assert [type(x).__name__ for x in out][1] == "DeadLetter"
    assert sum(isinstance(x, DeadLetter) for x in out) == 1 and len(out) == 4
    assert out[1].source.endswith(":2")  # type: ignore[union-attr]


def test_truncated_gzip_ends_the_file_not_the_run(tmp_path: Path) -> None:
    gz = tmp_path / "t.jsonl.gz"
    data = gzip.compress(SAMPLE.read_bytes() * 50)
    gz.write_bytes(data[: len(data) // 2])
    out = list(read_recording(gz))
    assert 0 < len(out) < 1000


def test_writer_round_trips_gzip(tmp_path: Path) -> None:
    items = [x for x in read_recording(SAMPLE)]
    with RecordingWriter(tmp_path / "o.jsonl.gz") as w:
        w.write_all(items)  # type: ignore[arg-type]
    again = list(read_recording(tmp_path / "o.jsonl.gz"))
    assert [x.model_dump() for x in again] == [x.model_dump() for x in items]
