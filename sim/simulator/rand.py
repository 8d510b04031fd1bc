"""Deterministic randomness keyed by names, not by call order.

A global or sequential RNG would make one scenario's choices shift when another scenario is added;
hashing ``(seed, *keys)`` gives every choice its own stable draw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def unit(seed: int, *keys: object) -> float:
    """A uniform draw in [0, 1) that depends only on ``seed`` and ``keys``.

    >>> unit(1, "a") == unit(1, "a") and unit(1, "a") != unit(2, "a")
    True
    """
    h = hashlib.blake2b(repr((seed, *keys)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def randint(seed: int, lo: int, hi: int, *keys: object) -> int:
    """An integer in [lo, hi] inclusive."""
    return lo + int(unit(seed, *keys) * (hi - lo + 1))


def shuffled(seed: int, items: Sequence[T], *keys: object) -> list[T]:
    """``items`` in a stable pseudo-random order (sorted by each item's own draw)."""
    return sorted(items, key=lambda it: unit(seed, *keys, repr(it)))
