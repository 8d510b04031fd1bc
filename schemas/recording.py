"""Recordings: JSON Lines, one envelope per line, optionally gzip. Streamed, never loaded whole."""

from __future__ import annotations

import gzip
import io
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import orjson
from pydantic import BaseModel

from schemas.deadletter import DeadLetter
from schemas.events import Envelope, event_type_of
from schemas.gate import FleetGate, GateConfig
from schemas.parse import dead_letter, parse_event

_GZIP_MAGIC = b"\x1f\x8b"


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a recording for reading: ``-`` is stdin; gzip is detected by its magic bytes."""
    if str(path) == "-":
        raw: IO[bytes] = sys.stdin.buffer
        peek = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if peek == _GZIP_MAGIC else raw
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    if f.read(2) == _GZIP_MAGIC:
        f.seek(0)
        return cast(IO[bytes], gzip.GzipFile(fileobj=f))
    f.seek(0)
    return f


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) for every non-blank line; a truncated gzip ends the file, not the run."""
    with open_binary(path) as f:
        n = 0
        try:
            for line in f:
                n += 1
                stripped = line.strip()
                if stripped:
                    yield n, stripped
        except (EOFError, OSError, gzip.BadGzipFile):
            return


@dataclass
class ValidationStats:
    events: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.events.values()) + sum(self.dead_letters.values())


class Validator:
    """Parse + context gate + counts: the single path every input goes through, file or topic."""

    def __init__(self, cfg: GateConfig | None = None) -> None:
        self.gate = FleetGate(cfg)
        self.stats = ValidationStats()

    def validate(self, raw: bytes, source: str = "", now: float | None = None) -> Envelope | DeadLetter:
        parsed = parse_event(raw, source)
        if isinstance(parsed, DeadLetter):
            self.stats.dead_letters[parsed.reason.value] += 1
            return parsed
        verdict = self.gate.check(parsed, now)
        if verdict is not None:
            self.stats.dead_letters[verdict[0].value] += 1
            return dead_letter(raw, verdict[0], verdict[1], source)
        self.stats.events[event_type_of(parsed)] += 1
        return parsed


def read_recording(path: str | Path, validator: Validator | None = None) -> Iterator[Envelope | DeadLetter]:
    """Every line of a recording as a typed event or a dead letter, in file order."""
    v = validator or Validator()
    name = str(path)
    for n, raw in iter_lines(path):
        yield v.validate(raw, f"{name}:{n}")


def dumps(obj: BaseModel | dict[str, Any]) -> bytes:
    """One compact JSON line (no newline) in wire layout."""
    if isinstance(obj, BaseModel):
        return obj.__pydantic_serializer__.to_json(obj, exclude_none=True)
    return orjson.dumps(obj)


class RecordingWriter:
    """Append JSON lines to a file (gzip when the name ends in .gz); ``-`` writes stdout."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._f: IO[bytes]
        if self.path == "-":
            self._f = sys.stdout.buffer
        elif self.path.endswith(".gz"):
            self._f = cast(IO[bytes], gzip.open(self.path, "wb", compresslevel=5))  # noqa: SIM115
        else:
            self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, obj: BaseModel | dict[str, Any]) -> None:
        self._f.write(dumps(obj) + b"\n")

    def write_all(self, objs: Iterable[BaseModel | dict[str, Any]]) -> int:
        n = 0
        for o in objs:
            self.write(o)
            n += 1
        return n

    def close(self) -> None:
        if self.path == "-":
            self._f.flush()
        else:
            self._f.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
