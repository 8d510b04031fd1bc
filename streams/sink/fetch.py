"""The sink's records of one topic-partition as columns: offsets, timestamps, values (and headers).

:class:`streams.pipeline.compat.FetchedReader` fills them from the record batches aiokafka has fetched,
without a Python object per record; the sink builds its ClickHouse batch from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Columns:
    """One topic-partition's records, in offset order, as parallel lists."""

    offsets: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    headers: list[list[tuple[str, bytes]]] | None = None
    """Only for partitions whose headers were asked for."""

    def __len__(self) -> int:
        return len(self.offsets)

    def cut(self, n: int) -> tuple[Columns, Columns]:
        """The first ``n`` records and the rest."""
        h = self.headers
        return (
            Columns(self.offsets[:n], self.timestamps[:n], self.values[:n], None if h is None else h[:n]),
            Columns(self.offsets[n:], self.timestamps[n:], self.values[n:], None if h is None else h[n:]),
        )
