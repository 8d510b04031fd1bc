"""A bounded on-disk spool for batches the store could not take (ClickHouse down or refusing).

The sink spools the *raw Kafka messages* of a batch, not rows: mapping is pure and deterministic,
so draining re-maps them to the very rows (and ids, and tokens) the failed insert would have
written. Each batch is one file, written to a temporary name, fsynced and renamed, so a crash
leaves either a whole batch or nothing. The spool refuses a batch that would exceed ``max_bytes``
(:class:`SpoolFull`); the sink then stops consuming instead of dropping data.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

_HEADER = struct.Struct(">HHqI")  # topic length, source length, timestamp ms, value length
_SUFFIX = ".spool"


class SpoolFull(Exception):
    """The spool would exceed its byte bound; the caller must apply back-pressure."""


class Message(NamedTuple):
    """One Kafka record as the sink saw it. ``source`` is ``topic/partition@offset``. A named tuple:
    the sink builds one per record, and a frozen dataclass cost it ~1 µs more each."""

    topic: str
    source: str
    timestamp_ms: int
    value: bytes


def encode(messages: list[Message]) -> bytes:
    parts = []
    for m in messages:
        t, s = m.topic.encode(), m.source.encode()
        parts += [_HEADER.pack(len(t), len(s), m.timestamp_ms, len(m.value)), t, s, m.value]
    return b"".join(parts)


def decode(data: bytes) -> Iterator[Message]:
    pos = 0
    while pos < len(data):
        tl, sl, ts, vl = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        topic = data[pos : pos + tl].decode()
        pos += tl
        source = data[pos : pos + sl].decode()
        pos += sl
        yield Message(topic, source, ts, data[pos : pos + vl])
        pos += vl


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

    def put(self, messages: list[Message]) -> Path:
        data = encode(messages)
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

    def load(self, path: Path) -> list[Message]:
        return list(decode(path.read_bytes()))

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
