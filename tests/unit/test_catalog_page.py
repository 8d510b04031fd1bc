"""docs/evidence/catalog.md is generated from the catalog's data and must be up to date."""

from __future__ import annotations

from pathlib import Path

from detectors.catalog_page import render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "evidence" / "catalog.md"


def test_catalog_page_is_generated_from_the_current_data() -> None:
    assert PAGE.read_text() == render(), (
        "docs/evidence/catalog.md is stale: run `python -m detectors.catalog_page > docs/evidence/catalog.md`"
    )


def test_catalog_page_lists_every_xid_every_deviation_and_every_peer_difference() -> None:
    page = render()
    assert all(f"\n| {code} | `" in page for code in range(1, 173))
    assert "| 94 | RST: Yes or D-RST: Yes on the line | gpu_reset |" in page
    assert "| nvsentinel | action | 74 |" in page and "| gpud | costlier | RESET_GPU |" in page
