"""The stage cores without Kafka: partitions interleaved at random, the guard fed through the watermark,
decisions routed back. Streaming must make exactly the decisions offline replay makes, in the same
order per node, whatever the interleaving and wherever the stages restart from their checkpoints."""

from __future__ import annotations

import random
import zlib
from collections import deque
from pathlib import Path

import pytest
from reliability.safety import assert_safe

from breakfix.cli.replay_cmd import run_offline
from breakfix.simulate.clock import parse_start
from breakfix.simulate.engine import SimConfig, simulate
from breakfix.simulate.scenario import load_scenario, resolve
from policy.engine import Engine, NodeRuntime, guard_from_bytes, guard_to_bytes
from policy.model import load_policy
from schemas.decision import Decision
from schemas.proposal import Proposal, Registration
from schemas.recording import iter_lines
from streams.guard_stage import GuardStage
from streams.node_stage import NodeStage

PARTS = 12
SCENARIOS = ["xid79-fallen-off-bus", "silent-agent", "tenant-report", "driver-rollout"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "rec.jsonl"
    sc = [load_scenario(p) for p in resolve(SCENARIOS)]
    simulate(
        SimConfig(nodes=40, hours=2, seed=3, start=parse_start("2025-01-01T00:00:00Z"), scenarios=sc), path
    )
    return path


def partition_of(node: str | None) -> int:
    return zlib.crc32((node or "").encode()) % PARTS


class Harness:
    """Drives NodeStage and GuardStage as the Faust shell does, with a seeded random interleaving."""

    def __init__(self, seed: int, restart_every: int = 0) -> None:
        self.rng = random.Random(seed)
        self.engine = Engine(load_policy(None))
        self.restart_every = restart_every
        self.node = self._node_stage()
        self.guard = self._guard_stage()
        self.tables: dict[str, bytes] = {}
        self.events: list[deque[tuple[int, bytes]]] = [deque() for _ in range(PARTS)]
        self.decisions_in: list[deque[bytes]] = [deque() for _ in range(PARTS)]
        self.guard_in: deque[tuple[str, object]] = deque()
        self.decisions: list[Decision] = []
        self.unacked: list[list[tuple[str, object]]] = [[] for _ in range(PARTS)]
        self.restarts = 0
        for p in range(PARTS):
            self.node.assign(p, [], 0.0)

    def _node_stage(self) -> NodeStage:
        e = self.engine
        return NodeStage(e, NodeRuntime.from_bytes, e.gate_cfg, e.policy.tick_s, checkpoint_events=100)

    def _guard_stage(self) -> GuardStage:
        models = {"proposal": Proposal, "registration": Registration}
        return GuardStage(self.engine, guard_to_bytes, guard_from_bytes, models, PARTS, max_wait_s=1e12)

    def load(self, path: Path) -> None:
        offsets = [0] * PARTS
        for _, raw in iter_lines(path):
            node = raw.split(b'"node":', 1)[1].split(b",", 1)[0].strip(b' "')
            targets = range(PARTS) if node in (b"null", b"") else [partition_of(node.decode())]
            for p in targets:
                self.events[p].append((offsets[p], raw))
                offsets[p] += 1

    def _checkpoint(self, p: int) -> None:
        for key, value in self.node.checkpoint(p, 0.0):
            self.tables[key] = value
        self.unacked[p].clear()  # the shell acknowledges input once its checkpoint is written

    def _node_input(self, p: int, wall: float) -> None:
        if self.decisions_in[p] and (not self.events[p] or self.rng.random() < 0.5):
            raw = self.decisions_in[p].popleft()
            self.unacked[p].append(("decision", raw))
            out = self.node.on_decision(p, raw, "d", wall)
        else:
            offset, raw = self.events[p].popleft()
            self.unacked[p].append(("event", (offset, raw)))
            out = self.node.on_event(p, offset, raw, "e", wall)
        if self.node.due(p, wall):
            self._checkpoint(p)
        elif out.guard:  # as the shell does: the proposing nodes are written, nothing is acknowledged
            for key, value in self.node.checkpoint_nodes(p, (i.node for i in out.guard)):
                self.tables[key] = value
        self.guard_in.extend(("item", i) for i in out.guard)
        self.guard_in.append(("progress", (p, self.node.progress(p, wall, None))))

    def _guard_input(self, wall: float) -> None:
        kind, x = self.guard_in.popleft()
        if kind == "progress":
            p, bound = x  # type: ignore[misc]
            self.guard.on_progress(p, bound)
        else:
            i = x
            self.guard.on_item(i.kind, i.key, i.item_id, i.body, i.partition, wall)  # type: ignore[attr-defined]
        self.guard.release(wall)
        for d in self.guard.outbox:
            self.decisions.append(d)
            self.decisions_in[self.guard.node_partition[d.node]].append(d.model_dump_json().encode())
        self.guard.outbox = []

    def run(self) -> list[Decision]:
        steps = 0
        while True:
            busy = [p for p in range(PARTS) if self.events[p] or self.decisions_in[p]]
            if not busy and not self.guard_in:
                if not len(self.guard.watermark):
                    return self.decisions
                for p in range(PARTS):  # the stream ended: every partition is caught up and idle
                    bound = self.node.progress(p, 1e12, self.node.partitions[p].position)
                    self.guard_in.append(("progress", (p, bound)))
                continue
            if self.guard_in and (not busy or self.rng.random() < 0.3):
                self._guard_input(0.0)
            else:
                self._node_input(self.rng.choice(busy), 0.0)
            steps += 1
            if self.restart_every and steps % self.restart_every == 0:
                self._restart_node_stage()

    def _restart_node_stage(self) -> None:
        """A crash (SIGKILL): un-checkpointed state is gone, unacknowledged input is delivered again,
        state comes back from the table and outboxes are re-sent."""
        for p in range(PARTS):
            for kind, x in reversed(self.unacked[p]):
                if kind == "event":
                    self.events[p].appendleft(x)  # type: ignore[arg-type]
                else:
                    self.decisions_in[p].appendleft(x)  # type: ignore[arg-type]
            self.unacked[p].clear()
        self.restarts += 1
        self.node = self._node_stage()
        for p in range(PARTS):
            self.guard_in.extend(("item", i) for i in self.node.assign(p, self.tables.items(), 0.0))


def by_node(decisions: list[Decision]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in decisions:
        out.setdefault(d.node, []).append(d.id)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaming_equals_offline_under_any_interleaving(recording: Path, seed: int) -> None:
    offline, _ = run_offline(str(recording), load_policy(None), None, None, None, False)
    h = Harness(seed)
    h.load(recording)
    streamed = h.run()
    assert_safe(streamed, recording)
    assert len(offline) >= 10, "the recording must produce decisions, or the comparison proves nothing"
    assert sorted(d.id for d in streamed) == sorted(d.id for d in offline)
    assert by_node(streamed) == by_node(offline)
    assert {d.id: d for d in streamed} == {d.id: d for d in offline}


def test_restarts_from_checkpoints_lose_and_duplicate_nothing(recording: Path) -> None:
    offline, _ = run_offline(str(recording), load_policy(None), None, None, None, False)
    h = Harness(7, restart_every=3001)
    h.load(recording)
    streamed = h.run()
    assert_safe(streamed, recording)
    ids = [d.id for d in streamed]
    assert h.restarts >= 5
    assert len(ids) == len(set(ids))
    assert by_node(streamed) == by_node(offline)
