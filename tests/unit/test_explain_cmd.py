"""``breakfix explain`` as a user runs it: real lines and a real scrape in, the reading, NVIDIA's
resolution and the product's decision out (driven through the CLI, the real policy and detectors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breakfix.cli.main import app

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "realworld"


def _explain(*args: str, stdin: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    res = CliRunner().invoke(app, ["explain", "--json", *args], input=stdin)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_explains_an_xid_line_with_nvidias_resolution_and_the_decision() -> None:
    # leptonai/gpud fixture (dmesg-with-xid-119.log): the driver's new recovery action is a GPU reset.
    line = (
        "[171167.897562] NVRM: Xid (PCI:0019:01:00): 154, GPU recovery action changed from "
        "0x4 (Drain and Reset) to 0x1 (GPU Reset Required)"
    )
    [e] = _explain(line)
    assert e["read_as"] == "Xid 154 on PCI 0019:01:00"
    assert e["nvidia"]["immediate"] == "XID_154" and e["nvidia"]["applies"] == "XID_154: gpu_reset"
    assert e["reading"]["action"] == "gpu_reset" and e["outcome"].startswith("acts: gpu_reset")
    assert "docs.nvidia.com/deploy/xid-errors" in e["source"]


def test_an_application_xid_is_explained_as_the_applications() -> None:
    [e] = _explain("NVRM: Xid (PCI:0000:38:00): 13, pid='<unknown>', name=<unknown>, Graphics Exception: ESR")
    assert e["nvidia"]["immediate"] == "RESTART_APP" and e["outcome"].startswith("no hardware action")


def test_a_multi_line_message_from_stdin_is_joined_like_the_collector_joins_it() -> None:
    text = (
        "NVRM: The NVIDIA GPU 0000:18:00.0\nNVRM: (PCI ID: 10de:2901) installed in this system has\n"
        "NVRM: fallen off the bus and is not responding to commands.\nEXT4-fs (sda1): mounted filesystem\n"
    )
    first, second = _explain(stdin=text)
    assert first["read_as"].startswith("Xid 79 on PCI 0000:18:00") and first["outcome"].startswith(
        "acts: reboot"
    )
    assert second["read_as"].startswith("not recognised")


def test_an_sxid_line_shows_fatality_link_and_nvidias_resolution() -> None:
    [e] = _explain(
        "nvidia-nvswitch3: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 32 egress non-posted PRIV error"
    )
    assert "non-fatal, link 32" in e["read_as"] and e["nvidia"]["immediate"] == "RESET_FABRIC"
    assert e["reading"]["informational"] and e["outcome"].startswith("no action")


def test_a_scrape_file_is_read_series_by_series(tmp_path: Path) -> None:
    fixture = SHARED / "dcgm" / "readme_blank_sentinel.prom"
    if not fixture.exists():
        pytest.skip("shared dcgm-exporter fixture not present")
    # NVIDIA/dcgm-exporter README scrape, plus an Xid exported as the last-Xid gauge with its err_code label.
    labels = 'gpu="0",UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",pci_bus_id="00000000:3B:00.0"'
    scrape = tmp_path / "scrape.prom"
    scrape.write_text(fixture.read_text() + f'\nDCGM_FI_DEV_XID_ERRORS{{{labels},err_code="48"}} 48\n')
    head, xid = _explain("--file", str(scrape))
    assert head["read_as"].startswith("1 GPU(s)") and "blank: 1" in head["read_as"]
    assert xid["read_as"] == "Xid 48 on GPU 0" and xid["nvidia"]["immediate"] == "WORKFLOW_XID_48"


def test_nothing_to_explain_says_what_to_do() -> None:
    res = CliRunner().invoke(app, ["explain"], input="")
    assert res.exit_code == 2 and "paste a line" in res.output
