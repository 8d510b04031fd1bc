"""Scenario files are data: bad ones are refused with the file and the offending key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.simulator.scenario import ScenarioError, load_scenario, resolve, shipped


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "s.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("name: x\nfaults:\n  - kind: xid79\n    duration: soon\n", "faults.0.xid79.duration"),
        ("name: x\nfaults:\n  - kind: xid79\n    colour: red\n", "faults.0.xid79.colour"),
        ("name: x\nfaults:\n  - kind: meteor\n", "faults.0"),
        ("name: x\nfaults:\n  - kind: thermal_fan\n    gpus: [9]\n", "faults.0.thermal_fan.gpus.0"),
        ("name: x\nfaults:\n  - kind: xid79\n    at: 140%\n", "faults.0.xid79.at"),
        ("name: x\nfaults: []\n", "faults"),
    ],
)
def test_errors_name_the_offending_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, text))
    assert f"s.yaml: {key}:" in str(err.value)


def test_invalid_yaml_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(_write(tmp_path, "name: [unclosed\n"))


def test_every_shipped_scenario_loads_and_all_resolves_them() -> None:
    files = shipped()
    assert len(files) == 13
    assert [load_scenario(p).name for p in files] == [p.stem for p in files]
    assert resolve(["all"]) == files
    assert resolve(["noise", "noise"]) == [p for p in files if p.stem == "noise"]
    with pytest.raises(ScenarioError, match="no scenario 'nope'"):
        resolve(["nope"])
