"""A fleet too small for the chosen scenarios is refused with the smallest size that fits."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from breakfix.cli.main import app
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.scenario import load_scenario, resolve
from sim.simulator.sizing import fits, minimum_nodes


def test_minimum_is_the_smallest_fleet_the_scenarios_fit() -> None:
    scenarios = [load_scenario(p) for p in resolve(["all"])]
    start = parse_start(DEFAULT_START)
    least = minimum_nodes(scenarios, 40, 0, start, 0.1)
    assert least is not None and least > 40
    assert fits(scenarios, least, 0, start, 0.1) and not fits(scenarios, least - 1, 0, start, 0.1)


def test_simulate_names_the_minimum_instead_of_failing_bare(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"
    result = CliRunner().invoke(app, ["simulate", "--nodes", "40", "--scenario", "all", "--hours", "0.1",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2 and not out.exists()
    scenarios = [load_scenario(p) for p in resolve(["all"])]
    least = minimum_nodes(scenarios, 40, 0, parse_start(DEFAULT_START), 0.1)
    assert f"use --nodes {least}" in result.output
    ok = CliRunner().invoke(app, ["simulate", "--nodes", str(least), "--scenario", "all", "--hours", "0.1",
                                  "--out", str(out), "--json"])  # fmt: skip
    assert ok.exit_code == 0 and out.exists()
