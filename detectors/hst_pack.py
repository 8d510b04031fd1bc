"""A node's river HalfSpaceTrees as a few hundred bytes instead of an ~8 KB pickle.

The trees' shape (split features and thresholds) follows from the construction parameters and the
seed alone: the model draws it from its seeded generator when it first learns, and never draws again.
What a node's model has learned is only each tree node's two masses (at most ``WINDOW_SIZE`` each, so
a byte apiece), the position in the window and whether the first window is over. Packing keeps those;
unpacking copies a model of the same shape built once per process and writes them back. A fingerprint
of the shape goes with the masses: a river release that draws other trees from the same seed is
detected on restore, and that node's model starts learning again (it only ever gives weak evidence).
"""

from __future__ import annotations

import pickle
import struct
import zlib
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from river.anomaly import HalfSpaceTrees

N_TREES = 4
HEIGHT = 4
WINDOW_SIZE = 50
SEED = 7
FEATURES = ("temp", "temp_max", "power", "util")
_HEADER = struct.Struct("<IBB")
"""Shape fingerprint, position in the window, first window still open."""


def new_model() -> HalfSpaceTrees:
    """Imports river here, not at module load: every CLI command loads the detectors, few build a model."""
    from river.anomaly import HalfSpaceTrees

    return HalfSpaceTrees(n_trees=N_TREES, height=HEIGHT, window_size=WINDOW_SIZE, seed=SEED)


def _nodes(m: HalfSpaceTrees) -> list[Any]:
    return [n for tree in m._tree_nodes for n in tree]


def fingerprint(m: HalfSpaceTrees) -> int:
    """CRC of the trees' shape: every node's split feature and threshold, depth first."""
    shape = [(getattr(n, "feature", None), getattr(n, "threshold", None)) for n in _nodes(m)]
    return zlib.crc32(repr((m.n_trees, m.height, m.window_size, shape)).encode())


@cache
def _template() -> tuple[bytes, int]:
    """A model with its trees drawn (pickled, so each unpack gets its own copy) and its fingerprint."""
    m = new_model()
    m.learn_one(dict.fromkeys(FEATURES, 0.0))  # type: ignore[no-untyped-call]
    return pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL), fingerprint(m)


def pack(m: HalfSpaceTrees) -> bytes:
    masses = bytes(v for n in _nodes(m) for v in (n.l_mass, n.r_mass))
    return _HEADER.pack(_template()[1], m.counter, m._first_window) + masses


def unpack(b: bytes) -> HalfSpaceTrees | None:
    """The model ``pack`` was given; None if it was packed from trees of another shape."""
    template, shape = _template()
    fp, counter, first_window = _HEADER.unpack_from(b)
    m: HalfSpaceTrees = pickle.loads(template)
    nodes = _nodes(m)
    masses = b[_HEADER.size :]
    if fp != shape or len(masses) != 2 * len(nodes):
        return None
    for i, n in enumerate(nodes):
        n.l_mass, n.r_mass = masses[2 * i], masses[2 * i + 1]
    m.counter, m._first_window = counter, bool(first_window)
    return m


def same_shape(m: HalfSpaceTrees) -> bool:
    """Whether ``m`` (unpickled from an older record) has the trees this process packs and unpacks."""
    return fingerprint(m) == _template()[1]
