"""Progress marks: one message carries every partition a worker moved; older one-partition marks
still read (a guard may re-read them after an upgrade)."""

from __future__ import annotations

import orjson

from streams.pipeline.guard_stage import progress_body, read_progress


def test_a_mark_round_trips_every_partition_with_its_order_key() -> None:
    bounds = {3: (1.5, "n1", 2), 0: (2.0, "\U0010ffff", 0)}
    assert read_progress(progress_body(bounds)) == bounds


def test_a_one_partition_mark_of_an_older_worker_still_reads() -> None:
    body = orjson.dumps({"partition": 4, "bound": [1.0, "", 0]})
    assert read_progress(body) == {4: (1.0, "", 0)}
