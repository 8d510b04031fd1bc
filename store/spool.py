"""A bounded on-disk spool for batches the store could not take (ClickHouse down or refusing).

The sink spools the *raw Kafka records* of a batch, not rows: the checks and the mapping are
deterministic (telemetry's run inside ClickHouse, the rest in :mod:`store.rows`), so
draining writes the very rows (and ids, and tokens) the failed insert would have written. A batch is
a list of :class:`Chunk` (one topic-partition's records as columns). Each batch is one file, written
to a temporary name, fsynced and renamed, so a crash leaves either a whole batch or nothing. The spool
refuses a batch that would exceed ``max_bytes`` (:class:`SpoolFull`); the sink then stops consuming
instead of dropping data.
"""

from __future__ import annotations

import itertools
import os
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

_MAGIC = b"BFSPOOL2"
_CHUNK = struct.Struct(">HHIi")  # catalogue name length, Kafka topic length, partition, records
_LEGACY = struct.Struct(">HHqI")  # before chunks: topic length, source length, timestamp ms, value length
_SUFFIX = ".spool"


class SpoolFull(Exception):
    """The spool would exceed its byte bound; the caller must apply back-pressure."""


class Chunk(NamedTuple):
    """Records of one topic-partition in offset order, kept as columns: the sink builds one per
    fetched partition, never an object per record. ``name`` is the catalogue topic (routing),
    ``topic`` the Kafka topic it came from (with any prefix: dead letters' ``source``)."""

    name: str
    topic: str
    partition: int
    offsets: list[int]
    timestamps: list[int]
    """Kafka record timestamps, ms since the epoch: dead letters carry no time of their own."""
    values: list[bytes]

    def sources(self) -> Iterator[str]:
        """``topic/partition@offset`` of each record, as dead letters name their origin."""
        prefix = f"{self.topic}/{self.partition}@"
        return (f"{prefix}{o}" for o in self.offsets)


def encode(chunks: list[Chunk]) -> bytes:
    parts = [_MAGIC]
    for c in chunks:
        name, topic = c.name.encode(), c.topic.encode()
        parts += [_CHUNK.pack(len(name), len(topic), c.partition, len(c.values)), name, topic]
        parts += [array("q", c.offsets).tobytes(), array("q", c.timestamps).tobytes()]
        parts += [array("q", map(len, c.values)).tobytes(), *c.values]
    return b"".join(parts)


def decode(data: bytes) -> list[Chunk]:
    if not data.startswith(_MAGIC):
        return _decode_legacy(data)
    out, pos = [], len(_MAGIC)
    while pos < len(data):
        nl, tl, partition, n = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        name, topic = data[pos : pos + nl].decode(), data[pos + nl : pos + nl + tl].decode()
        pos += nl + tl
        cols = []
        for _ in range(3):
            col = array("q")
            col.frombytes(data[pos : pos + 8 * n])
            cols.append(col.tolist())
            pos += 8 * n
        values = []
        for length in cols[2]:
            values.append(data[pos : pos + length])
            pos += length
        out.append(Chunk(name, topic, partition, cols[0], cols[1], values))
    return out


def _decode_legacy(data: bytes) -> list[Chunk]:
    """Spool files written before chunks (one header per record): drained after an upgrade, not lost."""
    out: list[Chunk] = []
    pos = 0
    while pos < len(data):
        tl, sl, ts, vl = _LEGACY.unpack_from(data, pos)
        pos += _LEGACY.size
        name, source = data[pos : pos + tl].decode(), data[pos + tl : pos + tl + sl].decode()
        pos += tl + sl
        where, _, offset = source.rpartition("@")
        topic, _, partition = where.rpartition("/")
        if not out or (out[-1].name, out[-1].topic, out[-1].partition) != (name, topic, int(partition)):
            out.append(Chunk(name, topic, int(partition), [], [], []))
        out[-1].offsets.append(int(offset))
        out[-1].timestamps.append(ts)
        out[-1].values.append(data[pos : pos + vl])
        pos += vl
    return out


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        for stale in self.dir.glob("*.tmp"):  # a crash mid-write left half a batch: never acknowledged
            stale.unlink()
        last = max((int(p.stem) for p in self.files()), default=0)
        self._seq = itertools.count(last + 1)

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        return sorted(self.dir.glob(f"*{_SUFFIX}"))

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())

    def put(self, chunks: list[Chunk]) -> Path:
        data = encode(chunks)
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool {self.dir} would exceed {self.max_bytes} bytes")
        path = self.dir / f"{next(self._seq):012d}{_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def load(self, path: Path) -> list[Chunk]:
        return decode(path.read_bytes())

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    @property
    def refused_dir(self) -> Path:
        """Batches the store kept refusing, set aside so the ones behind them drain; an operator
        moves a file back into the spool directory to try it again."""
        return self.dir / "refused"

    def set_aside(self, path: Path) -> Path:
        self.refused_dir.mkdir(exist_ok=True)
        target = self.refused_dir / path.name
        os.replace(path, target)
        return target
