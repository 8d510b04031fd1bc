"""The shipped catalog loads and selects as documented; bad playbooks fail naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from actuators.playbooks import FailureClass, PlaybookError, load_catalog, parse_playbook
from actuators.registry import kinds

REQUIRED = {
    "xid-ecc-conditional-drain-gpu-reset",
    "gpu-reset-only",
    "reboot",
    "thermal-power-ticket",
    "nvlink-nic-diagnostic-bundle",
    "stale-compute-cleanup",
    "rma-escalation",
}

MINIMAL = """
name: tiny
version: "1.0"
description: d
failure_classes: [gpu_hardware]
actions: [reboot]
steps:
  - {name: reboot, actuator: node_agent, operation: reboot, mutating: true, timeout_s: 60}
"""


def test_shipped_catalog_has_every_required_playbook_with_bounded_steps() -> None:
    catalog = load_catalog()
    assert set(catalog.playbooks) >= REQUIRED
    for pb in catalog.playbooks.values():
        assert all(s.actuator in kinds() and s.timeout_s > 0 for s in [*pb.steps, *pb.rollback])
        assert set(pb.failure_classes) <= set(FailureClass)


@pytest.mark.parametrize("name", ["thermal-power-ticket", "nvlink-nic-diagnostic-bundle"])
def test_diagnostic_playbooks_are_read_only(name: str) -> None:
    assert not load_catalog().get(name).mutating


def test_approval_requirements() -> None:
    catalog = load_catalog()
    assert catalog.get("stale-compute-cleanup").approval.kind == "role"
    assert catalog.get("rma-escalation").approval.kind == "two_person"
    assert catalog.get("xid-ecc-conditional-drain-gpu-reset").approval.kind == "none"


@pytest.mark.parametrize(
    ("failure_class", "action", "gpu", "expected"),
    [
        ("gpu_hardware", "gpu_reset", 3, "xid-ecc-conditional-drain-gpu-reset"),
        ("gpu_memory", "gpu_reset", 3, "gpu-reset-only"),
        ("gpu_memory", "gpu_reset", None, "xid-ecc-conditional-drain-gpu-reset"),
        ("node_os", "reboot", None, "reboot"),
        ("thermal_power", "ticket", None, "thermal-power-ticket"),
        ("nvlink_fabric", "ticket", None, "nvlink-nic-diagnostic-bundle"),
        ("gpu_hardware", "rma", None, "rma-escalation"),
        ("monitoring", "reboot", None, None),
    ],
)
def test_selection(failure_class: str, action: str, gpu: int | None, expected: str | None) -> None:
    chosen = load_catalog().select(failure_class, action, gpu)
    assert (chosen.name if chosen else None) == expected


def test_version_digest_changes_with_a_playbook_version(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(MINIMAL)
    first = load_catalog(tmp_path).version
    (tmp_path / "tiny.yaml").write_text(MINIMAL.replace('"1.0"', '"1.1"'))
    assert load_catalog(tmp_path).version != first


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (("timeout_s: 60", "timeout_s: -1"), "steps.0.timeout_s"),
        (("actuator: node_agent", "actuator: ansible"), "steps.0.actuator"),
        (("[gpu_hardware]", "[gpu_hardwar]"), "failure_classes.0"),
        (("[reboot]", "[explode]"), "actions.0"),
        (('version: "1.0"', "version: one"), "version"),
        (("description: d", "description: d\nbogus: 1"), "bogus"),
    ],
)
def test_invalid_playbook_error_names_file_and_key(edit: tuple[str, str], key: str) -> None:
    with pytest.raises(PlaybookError) as err:
        parse_playbook(MINIMAL.replace(*edit), "tiny.yaml")
    assert str(err.value).startswith("tiny.yaml: ") and key in str(err.value)


def test_loader_refuses_bad_yaml_duplicate_steps_and_name_mismatch(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="not valid YAML"):
        parse_playbook("name: [", "x.yaml")
    dup = MINIMAL + "  - {name: reboot, actuator: validate, operation: run, mutating: false, timeout_s: 5}\n"
    with pytest.raises(PlaybookError, match="unique"):
        parse_playbook(dup, "x.yaml")
    (tmp_path / "other.yaml").write_text(MINIMAL)
    with pytest.raises(PlaybookError, match="differs from the file name"):
        load_catalog(tmp_path)
    with pytest.raises(PlaybookError, match="needs a role"):
        parse_playbook(MINIMAL + "approval: {kind: role}\n", "x.yaml")
