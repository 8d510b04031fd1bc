"""A crafted pickle, as an attacker who can write a changelog topic would write it: loading it runs a
shell command that creates a marker file. Tests hand it to the record decoders and the restore path
and assert that the marker never appears."""

from __future__ import annotations

import os
import pickle
from pathlib import Path


class _Plant:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def attack(marker: Path) -> bytes:
    """A pickle whose loading runs ``touch marker`` (``os.system`` through ``__reduce__``)."""
    return pickle.dumps(_Plant(marker), protocol=pickle.HIGHEST_PROTOCOL)


def planted(marker: Path) -> bool:
    """Whether loading the attack ran (checked by the test that proves the attack works)."""
    return marker.exists()
