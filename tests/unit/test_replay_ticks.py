"""Offline replay schedules time-driven ticks as the streaming node stage does: every tick_s of event
time aligned to the epoch, nodes in id order; and the simulator writes events sorted by (time, node)."""

from __future__ import annotations

from pathlib import Path

import orjson

from policy.engine import Engine, NodeRuntime, NodeStep
from policy.model import load_policy
from sim.replay import OfflineReplay
from sim.simulator.engine import SimConfig, simulate
from tests.builders import T0, inventory, sample

POLICY = load_policy()


class _Recorder(Engine):
    """The real engine, noting when and for whom ``tick`` runs."""

    def __init__(self) -> None:
        super().__init__(POLICY)
        self.ticks: list[tuple[float, str]] = []

    def tick(self, rt: NodeRuntime, now: float) -> NodeStep:
        self.ticks.append((now, rt.node))
        return super().tick(rt, now)


def test_ticks_are_epoch_aligned_and_in_node_order(tmp_path: Path) -> None:
    # Nodes that go quiet are the ones ticks are for: three report once, a fourth keeps the clock going.
    events = [inventory(n, t=17) for n in ("c", "a", "b", "z")]
    events += [sample(n, 20) for n in ("c", "a", "b")]
    events += [sample("z", 20 + 15 * k) for k in range(1, 40)]
    rec = tmp_path / "rec.jsonl"
    rec.write_bytes(b"".join(e.model_dump_json().encode() + b"\n" for e in events))
    replay = OfflineReplay(POLICY)
    replay.engine = _Recorder()
    for _ in replay.run(rec):
        pass
    ticks = replay.engine.ticks
    assert ticks, "ten quiet minutes run time-driven ticks"
    assert all((t - 0) % POLICY.tick_s == 0 for t, _ in ticks)
    by_time: dict[float, list[str]] = {}
    for t, node in ticks:
        by_time.setdefault(t, []).append(node)
    assert any(len(nodes) >= 3 for nodes in by_time.values())
    assert all(nodes == sorted(nodes) for nodes in by_time.values())


def test_simulator_orders_events_by_time_then_node(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    simulate(SimConfig(nodes=40, hours=0.1, seed=5, start=int(T0)), rec)
    keys = []
    for line in rec.read_bytes().splitlines():
        e = orjson.loads(line)
        keys.append((e["time"], e["node"] or ""))
    assert keys == sorted(keys)
    first = {}
    for line in rec.read_bytes().splitlines():
        e = orjson.loads(line)
        if e["node"] is not None:
            first.setdefault(e["node"], e["type"])
    assert set(first.values()) == {"node.inventory"}
