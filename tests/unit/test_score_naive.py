"""The naive baseline acts on noise (so the comparison means something) and ignores silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.score.metrics import score
from sim.score.naive import run_naive
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, SimResult, simulate
from sim.simulator.scenario import load_scenario, resolve


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimResult]:
    out = tmp_path_factory.mktemp("naive") / "rec.jsonl.gz"
    scenarios = [load_scenario(p) for p in resolve(["noise", "silent-agent", "xid79-fallen-off-bus"])]
    # The scenarios' own noise only: the fleet background would have the naive rules act on those nodes
    # before the labelled moment.
    return out, simulate(SimConfig(24, 2.0, 3, parse_start(DEFAULT_START), scenarios, noise=None), out)


def test_naive_quarantines_every_noise_node_and_no_silent_one(sim: tuple[Path, SimResult]) -> None:
    out, result = sim
    naive = run_naive(out)
    fig = score(result.labels, naive.decisions, naive.inventory)
    assert fig["noise_quarantines"] == 9
    assert fig["silent_quarantines"] == 0
    assert fig["recall_decisive_hw"] == 1.0  # it does catch the Xid 79s
    assert fig["wrongful_destructive"] >= 9
    assert len(naive.inventory) == 24 and naive.events == result.events


def test_naive_rules_name_the_table_row(sim: tuple[Path, SimResult]) -> None:
    out, _ = sim
    triggers = {d.trigger for d in run_naive(out).decisions}
    assert {"naive:temp_over_limit", "naive:ecc_sbe", "naive:xid_13", "naive:xid_79"} <= triggers
