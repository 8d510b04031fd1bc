"""NVIDIA's Xid catalog and the NVSwitch SXid list as data: complete, faithful to NVIDIA's published
tables, never costlier than NVIDIA's immediate resolution on one occurrence, and cross-checked against
the mappings NVIDIA/NVSentinel and leptonai/gpud publish (their tables, read from ../shared/realworld)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from detectors.catalog import default_catalog
from detectors.nvidia_catalog import (
    NVIDIA_RUNG,
    PEER_DIFFERENCES_PATH,
    PRODUCT_RUNG,
    XIDS_PATH,
    XidCatalog,
    sxid_catalog,
    xid_catalog,
)
from detectors.xid_reading import read_sxid, read_xid

ROOT = Path(__file__).resolve().parents[2]
REFDATA = ROOT / ".." / "shared" / "realworld" / "refdata"
CROSSCHECK = yaml.safe_load(PEER_DIFFERENCES_PATH.read_text())
CAT = default_catalog()


def _ref(name: str) -> Any:
    path = REFDATA / name
    if not path.exists():
        pytest.skip(f"{path} (the shared real-world reference tables) is not present")
    return json.loads(path.read_text())


def _rung(code: int) -> int:
    """The ladder rung of what one occurrence of ``code`` proposes."""
    sig = CAT.xid(code)
    if sig.informational:
        return 0
    if sig.application:
        return 1
    return PRODUCT_RUNG[sig.action]


def test_every_xid_nvidia_publishes_is_in_the_catalog_with_nvidia_words() -> None:
    nvidia = _ref("nvidia_xid_catalog.json")["xids"]
    ours = xid_catalog().xids
    assert set(ours) == {int(k) for k in nvidia} == set(range(1, 173))
    for k, ref in nvidia.items():
        e = ours[int(k)]
        got = (e.mnemonic, e.description, e.immediate, e.investigatory)
        assert got == (ref["mnemonic"], ref["description"], ref["immediate"], ref["investigatory"]), k
        assert int(k) in CAT.xids


def test_every_sxid_of_the_nvswitch_list_is_in_the_catalog() -> None:
    gpud = _ref("gpud_sxid_actions.json")["sxids"]
    nvs = _ref("nvsentinel_catalog_subset.json")["sxids"]
    ours = sxid_catalog().sxids
    assert {int(k) for k in gpud} | {int(k) for k in nvs} == set(ours)
    for k, ref in gpud.items():
        assert ours[int(k)].name == ref["name"], k
    for k, ref in nvs.items():
        assert (ours[int(k)].immediate, ours[int(k)].fatality) == (ref["immediate"], ref["fatality"]), k


def test_one_occurrence_is_never_costlier_than_nvidias_immediate_resolution_unless_listed() -> None:
    deviations = []
    for code, e in xid_catalog().xids.items():
        if _rung(code) > NVIDIA_RUNG[e.immediate]:
            assert e.deviation, code
            deviations.append(code)
    # Only Xids for which NVIDIA publishes no resolution at all deviate, each with its reason.
    assert deviations and all(xid_catalog().xids[c].immediate == "" for c in deviations)


def test_application_and_ignorable_xids_are_never_hardware_evidence() -> None:
    for code in (8, 13, 31, 32, 43, 68, 69):
        assert CAT.xid(code).application or CAT.xid(code).informational, code
    for code in (14, 38, 43, 44, 63, 92, 137, 157):
        assert CAT.xid(code).informational and CAT.xid(code).weight == 0.0, code
    contained = read_xid(CAT, 94, "Contained: CE User Channel (0x9). RST: No, D-RST: No")
    assert contained.signal.application and contained.signal.action.value == "none"


def test_row_remap_chain_and_resets_follow_nvidia() -> None:
    assert CAT.xid(48).action.value == "gpu_reset"  # WORKFLOW_XID_48: a reset applies the pending remap
    assert CAT.xid(63).informational  # the remap itself: IGNORE
    assert CAT.xid(64).action.value == "gpu_reset" and CAT.xid(64).decisive  # RESET_GPU, not RMA on one
    assert CAT.xid(143).action.value == "gpu_reset"
    assert CAT.xid(79).action.value == "reboot" and CAT.xid(79).decisive


@pytest.mark.parametrize(
    ("code", "line", "action", "resolution"),
    [
        (149, "NETIR_LINK_EVT  Fatal   XC0 i0 Link 01 (0x021425c6 0x0)", "gpu_reset", "RESET_GPU"),
        (149, "NETIR_BER_EVENT Nonfatal XC0 i0 Link 01 (0x00082226 0x1)", "none", "IGNORE"),
        (145, "RLW_SRC_TRACK Nonfatal XC1 i0 Link 03 (0x040868e2 0x8)", "none", "IGNORE"),
        (144, "SAW_MVB Link Fatal XC0 i0 Link 02 (0x1)", "gpu_reset", "RESET_GPU"),
    ],
)
def test_nvlink5_xids_are_decoded_per_line_never_a_reboot(
    code: int, line: str, action: str, resolution: str
) -> None:
    r = read_xid(CAT, code, line)
    assert (r.signal.action.value, r.resolution) == (action, resolution)


@pytest.mark.parametrize(
    ("line", "action", "decisive"),
    [
        ("GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)", "gpu_reset", True),
        (
            "GPU recovery action changed from 0x4 (Drain and Reset) to 0x1 (GPU Reset Required)",
            "gpu_reset",
            True,
        ),
        ("GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)", "reboot", True),
        ("GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)", "none", False),
    ],
)
def test_xid154_follows_the_recovery_action_the_line_names(line: str, action: str, decisive: bool) -> None:
    r = read_xid(CAT, 154, line)
    assert (r.signal.action.value, r.signal.decisive) == (action, decisive)
    assert r.clears == (action == "none")
    # The same fact NVML reports as the GPU's recovery action: the same signal, so the same slot.
    assert r.key.startswith("recovery_") or r.clears


def test_sxid_line_fatality_decides() -> None:
    fatal = read_sxid(CAT, 20034, True, 48)
    assert (fatal.signal.action.value, fatal.resolution) == ("gpu_reset", "RESET_GPU")
    assert fatal.signal.domain.value == "nvlink_fabric" and "link 48" in fatal.rule
    assert read_sxid(CAT, 12028, False, 32).signal.weight == 0.0
    assert read_sxid(CAT, 11004, True, None).signal.action.value == "ticket"  # CHECK_FM_CONFIG


def test_a_costlier_action_without_a_deviation_is_refused_naming_the_xid() -> None:
    raw = yaml.safe_load(XIDS_PATH.read_text())
    raw["xids"][43]["product"] = {"action": "reboot", "weight": 0.5}
    with pytest.raises(ValidationError, match=r"xids\.43: action 'reboot' is costlier than NVIDIA's IGNORE"):
        XidCatalog.model_validate(raw)


def _nvsentinel_action(immediate: str, action_map: dict[str, str]) -> str:
    return action_map.get(immediate, action_map["_default"])


PRODUCT_AS_NVSENTINEL = {
    "none": "NONE",
    "gpu_reset": "COMPONENT_RESET",
    "reboot": "RESTART_BM",
    "ticket": "CONTACT_SUPPORT",
}


def test_differences_from_nvsentinel_are_exactly_the_documented_ones() -> None:
    ref = _ref("nvsentinel_catalog_subset.json")
    immediate, action = {}, {}
    for k, row in ref["xids"].items():
        code = int(k)
        if xid_catalog().xids[code].immediate != row["immediate"]:
            immediate[code] = row["immediate"]
        sig = CAT.xid(code)
        ours = "none" if sig.application or sig.informational else sig.action.value
        if PRODUCT_AS_NVSENTINEL[ours] != _nvsentinel_action(row["immediate"], ref["action_map"]):
            action[code] = ours
    assert set(immediate) == set(CROSSCHECK["nvsentinel"]["immediate"])
    assert set(action) == set(CROSSCHECK["nvsentinel"]["action"])


GPUD_RUNG = {"IgnoreNoActionRequired": 0, "CheckUserAppAndGPU": 1, "RebootSystem": 3, "HardwareInspection": 4}


def test_differences_from_gpud_are_exactly_the_documented_ones() -> None:
    ref = _ref("gpud_xid_actions.json")["xids"]
    seen: dict[str, set[str]] = {"costlier": set(), "cheaper": set()}
    outside = set()
    for k, row in ref.items():
        code = int(k)
        if code not in xid_catalog().xids:
            outside.add(code)
            continue
        theirs = max((GPUD_RUNG[a] for a in row["repair_actions"]), default=0)
        if theirs != _rung(code):
            seen["costlier" if theirs > _rung(code) else "cheaper"].add(xid_catalog().xids[code].immediate)
    for direction, groups in seen.items():
        assert groups == set(CROSSCHECK["gpud"][direction]), direction
    assert outside == set(CROSSCHECK["gpud"]["not_in_nvidia_catalog"])
