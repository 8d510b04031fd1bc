"""docs/operate/collectors.md states what the code does: the counters-CSV lines to add are the ones
the dcgm collector asks for, and its node-problem-detector table is the catalog's."""

from __future__ import annotations

import json
from pathlib import Path

from agents.collect.dcgm import WANTED_FIELDS
from detectors.catalog import default_catalog

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "operate" / "collectors.md").read_text()
NPD = REPO / ".." / "shared" / "realworld" / "npd.jsonl"


def test_the_page_lists_every_counters_csv_line_the_collector_asks_for() -> None:
    for _names, lines in WANTED_FIELDS.values():
        for line in lines:
            assert line in PAGE, line


def test_the_npd_table_matches_the_catalog() -> None:
    rows = [r.split("|")[1:-1] for r in PAGE.splitlines() if r.startswith("| ") and r.count("|") == 5]
    table = {
        c.strip(): (d.strip(), a.strip()) for c, _cfg, d, a in rows if c.strip() not in ("condition", "---")
    }
    cat = default_catalog().conditions
    assert len(table) == 13
    for condition, (domain, action) in table.items():
        assert (cat[condition].domain.value, cat[condition].action.value) == (domain, action), condition
    if NPD.exists():  # node-problem-detector's shipped problem conditions, read in place
        shipped = {json.loads(line)["raw"]["condition"] for line in NPD.read_text().splitlines() if line}
        assert shipped == set(table)
