"""Every docstring example in the product runs: a module whose docstrings hold a ``>>>`` example is
found here and its examples are executed (doctest), so documentation that stops being true fails
``make test``. No list to keep: a new module with an example is picked up by itself."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "schemas", "detectors", "policy", "store", "streams", "actuators", "agents", "sim", "breakfix", "bench",
)


def _with_examples() -> list[str]:
    found = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(REPO).with_suffix("").parts
                found.append(".".join(parts).removesuffix(".__init__"))
    return found


MODULES = _with_examples()


def test_the_examples_are_found() -> None:
    """Guards the discovery itself: the vocabulary and the registries carry examples."""
    assert {"schemas.vocab", "detectors.registry", "actuators.registry", "policy.guardrails"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has '>>> ' outside a docstring example"
    assert result.failed == 0
