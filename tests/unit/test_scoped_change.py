"""A change event applies by its scope wherever it arrives (policy.driver's scope fan-out): a driver
rollout that a third-party producer writes naming one node of the pool still reaches the pool's other
nodes, so their GPU failures after it are the change's regression, not hardware to quarantine."""

from __future__ import annotations

from pathlib import Path

import orjson

from breakfix.cli.replay_cmd import run_offline
from policy.model import load_policy
from schemas.decision import Decision
from schemas.recording import iter_lines
from sim.simulator.clock import parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve


def named_rollout(tmp: Path) -> tuple[Path, str]:
    """The simulator's driver-rollout recording with its pool-wide change rewritten to name one node
    of the pool in its envelope (as a deploy controller that reports per node would), and that node."""
    src, out = tmp / "sim.jsonl", tmp / "named.jsonl"
    sc = [load_scenario(p) for p in resolve(["driver-rollout"])]
    start = parse_start("2025-01-01T00:00:00Z")
    simulate(SimConfig(nodes=24, hours=2, seed=5, start=start, scenarios=sc), src)
    lines = [orjson.loads(raw) for _, raw in iter_lines(src)]
    pool = next(e["data"]["scope"]["pool"] for e in lines if e["type"] == "change.event")
    named = next(e["node"] for e in lines if e["type"] == "node.inventory" and e["data"].get("pool") == pool)
    with out.open("wb") as f:
        for e in lines:
            if e["type"] == "change.event":
                e["node"] = named
            f.write(orjson.dumps(e) + b"\n")
    return out, named


def acting(decisions: list[Decision], skip: str) -> list[Decision]:
    return [d for d in decisions if d.node != skip and not d.held and d.to_state.value != "Healthy"]


def test_a_pool_change_naming_one_node_reaches_the_pools_other_nodes(tmp_path: Path) -> None:
    path, named = named_rollout(tmp_path)
    decisions, _ = run_offline(str(path), load_policy(None), None, None, None, False)
    others = acting(decisions, named)
    assert len({d.node for d in others}) >= 3, "the rollout must hit other nodes, or this proves nothing"
    assert all(d.failure_class == "change_regression" for d in others), [
        (d.node, d.failure_class, d.to_state.value) for d in others
    ]
    assert not [d for d in others if d.to_state.value == "Quarantined"]


def test_the_named_and_the_node_less_change_decide_alike(tmp_path: Path) -> None:
    """Whether the producer names a node or writes the change node-less, the pool decides the same."""
    path, named = named_rollout(tmp_path)
    plain = tmp_path / "sim.jsonl"
    a, _ = run_offline(str(path), load_policy(None), None, None, None, False)
    b, _ = run_offline(str(plain), load_policy(None), None, None, None, False)
    key = [(d.node, d.failure_class, d.to_state.value) for d in acting(a, named)]
    assert key == [(d.node, d.failure_class, d.to_state.value) for d in acting(b, named)]
