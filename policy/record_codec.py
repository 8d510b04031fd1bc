"""The one byte format of state records (node checkpoints, the guard's snapshot): values, never code.

State records are read back from changelog topics, which anyone who can write to the broker can
fill, so decoding must not be able to run anything. The format is MessagePack (msgpack.org), a
data-only encoding: it names no classes, imports nothing and calls nothing while decoding, and its C
implementation is as fast as the pickle it replaced (``bench/bench_node_record.py``). Values are
``None``, ``bool``, ``int`` (64-bit), ``float`` (infinities included), ``str``, ``bytes``, arrays and
maps: a ``tuple`` or ``list`` is written as an array and read back as a ``tuple`` (hashable, so a
tuple key of a map survives), so decoders build the lists, deques and sets they keep themselves.
Anything else (an object, a class, a set) is refused when writing; an extension type or malformed
bytes are refused when reading, with :class:`RecordRefused`.

A record is its kind-and-version ``magic`` followed by the packed value; a record of another kind or
version is refused, never guessed at: the stage that reads it rebuilds its state from retained input.
"""

from __future__ import annotations

from typing import Any

import msgpack


class RecordRefused(ValueError):
    """A state record this version does not read (other kind, other or former format, corrupt)."""


def _default(obj: Any) -> Any:
    if isinstance(obj, bytearray | memoryview):
        return bytes(obj)
    raise TypeError(f"a state record holds values only, not {type(obj).__name__}")


def _no_ext(code: int, data: bytes) -> Any:
    raise RecordRefused(f"extension type {code} in a state record (records hold plain values only)")


def encode(magic: bytes, value: Any) -> bytes:
    """``magic`` (kind and version) followed by ``value`` packed."""
    packed: bytes = msgpack.packb(value, default=_default, use_bin_type=True)
    return magic + packed


def decode(magic: bytes, kind: str, b: bytes) -> Any:
    """The value of a record of this kind and version, or :class:`RecordRefused` saying why not."""
    if not b.startswith(magic):
        raise RecordRefused(f"not a current {kind} record: {describe(b)}")
    try:
        return msgpack.unpackb(
            memoryview(b)[len(magic) :], ext_hook=_no_ext, raw=False, strict_map_key=False, use_list=False
        )
    except RecordRefused:
        raise
    except Exception as e:  # msgpack's errors for truncated, extra or malformed bytes
        raise RecordRefused(f"corrupt {kind} record ({type(e).__name__}: {e})") from None


def describe(b: bytes) -> str:
    """What a refused record looks like, for the error: a former pickle format is named as such."""
    if b[:1] == b"\x80":
        return "a pickle (the format before explicit records); pickles are never loaded"
    if b[2:3] == b"\x01" and b[:2] in (b"NR", b"GR"):
        return "format 1 (a pickle of values, the format before 2); pickles are never loaded"
    return f"it starts with {bytes(b[:4])!r}"
