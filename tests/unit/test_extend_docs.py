"""The extend pages name exactly the files to touch: every repository path they quote exists (a
rename that leaves a recipe pointing at nothing fails here), and each recipe's file count matches
the table on the section's index page."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "docs" / "extend").glob("*.md"))
_PATH = re.compile(r"`((?:actuators|breakfix|detectors|policy|schemas|streams|tests)/[\w/.-]+)`")


def test_every_quoted_path_exists() -> None:
    quoted = {(page.name, m) for page in PAGES for m in _PATH.findall(page.read_text())}
    assert quoted, "the pages quote the files to touch"
    missing = sorted((page, p) for page, p in quoted if not (REPO / p).exists())
    assert missing == []


def test_each_recipe_lists_as_many_files_as_the_index_says() -> None:
    index = (REPO / "docs" / "extend" / "index.md").read_text()
    for page, count in (("detector.md", 2), ("actuator.md", 3), ("operation.md", 2), ("event-type.md", 2)):
        assert f"]({page}) | {count}" in index
        text = (REPO / "docs" / "extend" / page).read_text()
        files = re.findall(r"^\d\. \*\*`", text, re.M)
        assert len(files) >= count, page
