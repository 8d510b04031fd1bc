"""streams.pipeline.compat: the one module that touches Faust's and aiokafka's private API, and its
version gate."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from streams.pipeline.compat import SUPPORTED, UnsupportedVersion, check_versions

ROOT = Path(__file__).resolve().parents[2]
_INTERNAL_MODULES = ("aiokafka.consumer.fetcher", "faust.transport.drivers")
"""Modules of the two libraries that are implementation, not API (their names carry no underscore)."""


def _versions(**over: str) -> dict[str, str]:
    found = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
    found.update({k.replace("_", "-"): v for k, v in over.items()})
    return found


def test_the_tested_releases_pass() -> None:
    check_versions(_versions())


@pytest.mark.parametrize(
    ("dist", "version"),
    [
        ("faust-streaming", "0.16.0"),
        ("faust-streaming", "0.11.2"),
        ("aiokafka", "0.15.0"),
        ("aiokafka", "0.13.1"),
    ],
)
def test_another_release_is_refused_naming_the_supported_range(dist: str, version: str) -> None:
    low, high = SUPPORTED[dist]
    with pytest.raises(UnsupportedVersion) as err:
        check_versions({**_versions(), dist: version})
    text = str(err.value)
    assert f"{dist} {version}" in text
    assert f"{dist}>={low[0]}.{low[1]},<{high[0]}.{high[1]}" in text
    assert "streams/pipeline/compat.py" in text


def test_a_missing_library_is_refused_with_what_to_install() -> None:
    found = _versions()
    del found["aiokafka"]
    with pytest.raises(
        UnsupportedVersion, match=r"aiokafka is not installed; install aiokafka>=0\.14,<0\.15"
    ):
        check_versions(found)


def _private_touches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = ast.unparse(node.value)
            if owner not in ("self", "cls"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            internal = node.module.startswith(_INTERNAL_MODULES) or "._" in f".{node.module}"
            underscored = any(a.name.startswith("_") for a in node.names)
            if top in ("faust", "aiokafka") and (internal or underscored):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import ...")
    return found


def test_no_module_but_compat_reaches_into_another_objects_private_attributes() -> None:
    """The shell's processes (pipeline, actuation, sink, CLI) read Faust and aiokafka only through
    their public API or streams.pipeline.compat: an upgrade has one file to re-check."""
    touches = [
        t
        for package in ("streams", "store", "agents", "sim", "breakfix", "actuators")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "streams" / "pipeline" / "compat.py"
        for t in _private_touches(path)
    ]
    assert touches == []
    assert _private_touches(ROOT / "streams" / "pipeline" / "compat.py")  # the scan sees what compat does
