"""The label and category rules the product follows on NICo (NICo's ``crates/api/src/handlers/
instance.rs`` reads ``repair_status`` case-insensitively; ``rest-api/api/pkg/api/model/util/
validation.go`` allows at most 10 labels; MachineHealthIssue categories from NICo's OpenAPI document)."""

from __future__ import annotations

import pytest

from actuators.base import PermanentError
from actuators.nico import labels as L


@pytest.mark.parametrize(
    ("raw", "read"),
    [("Completed", "Completed"), ("COMPLETED", "Completed"), ("failed", "Failed"),
     ("in_progress", "InProgress"), ("in-progress", "InProgress"), ("InProgress", "InProgress"),
     ("done", None), ("", None)],
)  # fmt: skip
def test_repair_status_is_read_as_nico_reads_it(raw: str, read: str | None) -> None:
    assert L.repair_status({"repair_status": raw} if raw else {}) == read


def test_the_whole_map_is_sent_with_the_operators_labels_kept() -> None:
    current = {"RackIdentifier": "R1", "repair_status": "Completed", "repair_eta": "old"}
    assert L.with_repair(current, "Failed", "ECC persists", "2026-03-03T00:00:00Z") == {
        "RackIdentifier": "R1", "repair_status": "Failed", "repair_details": "ECC persists",
        "repair_eta": "2026-03-03T00:00:00Z",
    }  # fmt: skip


def test_optional_labels_give_way_first_and_an_operators_label_never_does() -> None:
    eight = {f"k{i}": "v" for i in range(8)}
    assert set(L.with_repair(eight, "Completed", "d", "e")) == {*eight, "repair_status", "repair_details"}
    nine = {f"k{i}": "v" for i in range(9)}
    assert set(L.with_repair(nine, "Completed", "d", "e")) == {*nine, "repair_status"}
    with pytest.raises(PermanentError, match="10"):
        L.with_repair({f"k{i}": "v" for i in range(10)}, "Completed")
    assert len(L.with_repair({**nine, "repair_status": "InProgress"}, "Completed", "d")) == 10


def test_only_nicos_statuses_are_written() -> None:
    with pytest.raises(PermanentError):
        L.with_repair({}, "Done")


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("HARDWARE", "Hardware"), ("NETWORK", "Network"), ("PERFORMANCE", "Performance"), ("OTHER", "Other")],
)
def test_categories_map_both_ways(ours: str, theirs: str) -> None:
    assert L.to_nico_category(ours) == theirs and L.from_nico_category(theirs) == ours
    assert L.from_nico_category(theirs.upper()) == ours  # the core's enum spelling


def test_unknown_categories_are_other() -> None:
    assert L.to_nico_category("STORAGE") == "Other" and L.from_nico_category("Unspecified") == "OTHER"
    assert L.from_nico_category(None) == "OTHER"
