"""The stage cores without Kafka: partitions interleaved at random, the guard fed through the watermark,
decisions routed back. Streaming must make exactly the decisions offline replay makes, in the same
order per node, whatever the interleaving and wherever the stages restart from their checkpoints."""

from __future__ import annotations

import asyncio
import math
import random
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fakes.stream_ports import MemoryPipeline
from reliability.safety import assert_safe

from breakfix.cli.replay_cmd import run_offline
from policy.engine import Engine, NodeRuntime, guard_from_bytes, guard_to_bytes
from policy.model import load_policy
from schemas.deadletter import DeadLetter
from schemas.decision import Decision
from schemas.proposal import Proposal, Registration
from schemas.recording import iter_lines
from schemas.topics import Topic
from sim.simulator.clock import parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve
from streams.pipeline.guard_stage import GuardStage
from streams.pipeline.node_stage import NodeStage

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
    """Drives NodeStage and GuardStage directly, with a seeded random interleaving and progress fed by
    hand: finer control of the stages than the runtime classes give (the tests of one tick round
    step them input by input). The runtime classes themselves run the same recording through
    in-memory ports in the test_the_runtime_classes_* tests."""

    def __init__(self, seed: int, restart_every: int = 0, checkpoint_events: int = 100) -> None:
        self.rng = random.Random(seed)
        self.engine = Engine(load_policy(None))
        self.restart_every = restart_every
        self.checkpoint_events = checkpoint_events
        self.letters: list[DeadLetter] = []
        self.next_offset = [0] * PARTS
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
        n = self.checkpoint_events
        return NodeStage(e, NodeRuntime.from_bytes, e.gate_cfg, e.policy.tick_s, checkpoint_events=n)

    def _guard_stage(self) -> GuardStage:
        models = {"proposal": Proposal, "registration": Registration}
        return GuardStage(self.engine, guard_to_bytes, guard_from_bytes, models, PARTS, max_wait_s=1e12)

    def load(self, path: Path) -> None:
        self.feed(raw for _, raw in iter_lines(path))

    def feed(self, lines: Iterable[bytes]) -> None:
        offsets = self.next_offset
        for raw in lines:
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
        self.letters.extend(out.dead_letters)
        for copy in out.fanout:  # as the shell does: the copy goes to every partition of the events topic
            for q in range(PARTS):
                self.events[q].append((self.next_offset[q], copy))
                self.next_offset[q] += 1
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
    assert [d.id for d in streamed] == [d.id for d in offline], "the guard decided in another order"
    assert {d.id: d for d in streamed} == {d.id: d for d in offline}


def _runtime_pipeline() -> tuple[MemoryPipeline, Callable[[], NodeStage]]:
    """Both runtime classes over one in-memory broker, and a maker of fresh node stages (restarts)."""
    e = Engine(load_policy(None))
    models: dict[str, Any] = {"proposal": Proposal, "registration": Registration}

    def node_stage() -> NodeStage:
        return NodeStage(e, NodeRuntime.from_bytes, e.gate_cfg, e.policy.tick_s)

    def guard_stage() -> GuardStage:
        return GuardStage(e, guard_to_bytes, guard_from_bytes, models, PARTS, max_wait_s=1e12)

    return MemoryPipeline(node_stage(), guard_stage), node_stage


def _load(pipe: MemoryPipeline, recording: Path) -> None:
    for _, raw in iter_lines(recording):
        node = orjson.loads(raw)["node"]
        for p in [partition_of(node)] if node else range(PARTS):
            pipe.kafka.append(Topic.EVENTS, p, (node or "").encode(), raw)


def _streamed(pipe: MemoryPipeline) -> list[Decision]:
    return [Decision.model_validate_json(m.value) for m in pipe.kafka.sent if m.topic == Topic.DECISIONS]


def test_the_runtime_classes_stream_what_offline_replay_decides(recording: Path) -> None:
    """NodeShell and GuardShell, the classes the workers run, over in-memory ports (no broker): every
    write, flush, send and acknowledgement they make in a random interleaving, and the decisions come
    out as offline replay's, in its order, with all input acknowledged at the end."""
    offline, _ = run_offline(str(recording), load_policy(None), None, None, None, False)
    pipe, _ = _runtime_pipeline()
    _load(pipe, recording)
    asyncio.run(pipe.run_interleaved(random.Random(5)))
    streamed = _streamed(pipe)
    assert len(offline) >= 10, "the recording must produce decisions, or the comparison proves nothing"
    assert [d.id for d in streamed] == [d.id for d in offline], "the guard decided in another order"
    assert {d.id: d for d in streamed} == {d.id: d for d in offline}
    ends = {
        tp: len(log) for tp, log in pipe.kafka.logs.items() if tp.topic in (Topic.EVENTS, Topic.PROPOSALS)
    }
    assert {tp: pipe.kafka.committed.get(tp, 0) for tp in ends} == ends, "input left unacknowledged"


def test_the_runtime_classes_killed_and_restarted_lose_and_duplicate_nothing(recording: Path) -> None:
    """The same with the node stage killed at random and restarted from its table and committed
    offsets: proposals re-sent from outboxes are dropped by the guard, decisions re-read by the node."""
    offline, _ = run_offline(str(recording), load_policy(None), None, None, None, False)
    pipe, node_stage = _runtime_pipeline()
    _load(pipe, recording)
    asyncio.run(pipe.run_interleaved(random.Random(8), crash=node_stage))
    ids = [d.id for d in _streamed(pipe)]
    assert pipe.crashes >= 5
    assert len(ids) == len(set(ids)), "a decision was sent twice"
    assert by_node(_streamed(pipe)) == by_node(offline)


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


def _skewed_and_fresh(recording: Path) -> tuple[list[bytes], list[bytes]]:
    """50 xid events from a producer 2 h fast or 7 h slow (as tests/reliability/test_faults.py sends),
    and one ordinary inventory event per node 30 s after the recording's end."""
    inventory: dict[str, dict[str, object]] = {}
    last = ""
    for _, raw in iter_lines(recording):
        ev = orjson.loads(raw)
        last = max(last, ev["time"])
        if ev["type"] == "node.inventory":
            inventory[ev["node"]] = ev
    end = datetime.fromisoformat(last.replace("Z", "+00:00"))
    nodes = sorted(inventory)[:10]
    skewed = []
    for i, node in enumerate(nodes * 5):
        skew = timedelta(hours=2) if i % 2 else -timedelta(hours=7)
        ev = {"id": f"skew-{i}", "type": "gpu.xid", "source": "skewed", "node": node,
              "time": (end + skew).isoformat(), "data": {"gpu": 0, "xid": 79}}  # fmt: skip
        skewed.append(orjson.dumps(ev))
    at = (end + timedelta(seconds=30)).isoformat()
    fresh = [orjson.dumps({**inv, "id": f"fresh-{n}", "time": at}) for n, inv in sorted(inventory.items())]
    return skewed, fresh


def test_restart_keeps_the_stream_clock_when_node_records_cover_more_than_the_partition_record(
    recording: Path,
) -> None:
    """The faults test's double SIGKILL without Kafka. Full checkpoints are rare (one mid-way in the
    larger partitions, none in the others); every node's record was written just before the crash,
    as proposals force. The restarted stage re-reads each partition from its last full checkpoint and
    skips all of it, yet its clock must come back: the fast and slow producer are dead-lettered as
    offline replay does it, and ordinary events just after the recording's end are accepted. Node
    events only: node-less ones are re-applied after a restart (the partition record holds their
    offset) and would move the clock whatever the node records say, as on a fleet without a
    scheduler feed."""
    lines = [raw for _, raw in iter_lines(recording) if orjson.loads(raw)["node"]]
    h = Harness(11, checkpoint_events=len(lines) // PARTS)
    h.feed(lines)
    h.run()
    assert any(ps.time.clock == -math.inf for ps in (h.node.partitions[p] for p in range(PARTS))) is False
    for p in range(PARTS):  # every node written after its last event; the partition record stays old
        for key, value in h.node.checkpoint_nodes(p, list(h.node.partitions[p].nodes)):
            h.tables[key] = value
    restored_without_record = sum(f"/partition/{p}" not in h.tables for p in range(PARTS))
    h._restart_node_stage()
    h.letters.clear()
    skewed, fresh = _skewed_and_fresh(recording)
    h.feed([*skewed, *fresh])
    h.run()
    reasons = Counter(d.reason.value for d in h.letters if d.event_id and d.event_id.startswith("skew-"))
    others = [(d.event_id, d.reason.value) for d in h.letters if not str(d.event_id).startswith("skew-")]
    assert restored_without_record > 0, "no partition restarted without its record: the case is not covered"
    assert sum(reasons.values()) == len(skewed), f"skewed events accepted after the restart: {reasons}"
    assert set(reasons) <= {"far_future", "stale", "out_of_order"}
    assert others == [], f"ordinary events dead-lettered after the restart: {others[:5]}"


T0 = 1795514700.0
"""A whole minute of event time: the policy's ticks fall every 60 s from it."""
HELD = [f"h{i:03d}" for i in range(24)]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _inventory(node: str, t: float, k: int) -> bytes:
    data = {"pool": "pool0", "rack": f"rack{zlib.crc32(node.encode()) % 3}", "sku": "H100", "gpus": 8}
    ev = {"id": f"inv-{node}-{k}", "type": "node.inventory", "source": "t", "time": _iso(t), "node": node}
    return orjson.dumps({**ev, "data": data})


def _xid79(node: str, t: float) -> bytes:
    ev = {"id": f"x-{node}-{int(t)}", "type": "gpu.xid", "source": "t", "time": _iso(t), "node": node}
    return orjson.dumps({**ev, "data": {"gpu": 0, "xid": 79}})


def _held_pool(nodes: list[str]) -> list[bytes]:
    """One pool whose nodes all lose a GPU a minute in: one is quarantined, headroom holds the rest,
    and each held node proposes again at every later tick."""
    return [_inventory(n, T0, 0) for n in nodes] + [_xid79(n, T0 + 60) for n in nodes]


def test_a_minute_tick_of_many_held_nodes_reaches_the_guard_as_one_batch() -> None:
    """Every held node re-proposes at the same tick. A node awaiting its decision used to cap its
    partition's progress just after its own proposal, so the guard got one node per decision round
    trip (~0.1 s each in a deployment: ~10 s for a hundred held nodes, every minute). A pending tick
    now caps progress only after every tick of its time step, and input buffered by a pending node
    moves its partition's progress (here every node that gets input is pending)."""
    h = Harness(1)
    h.feed(_held_pool(HELD))
    first = h.run()
    held = {d.node for d in first if d.held}
    assert len(held) >= 20, f"headroom must hold most of the pool: {len(held)} held"
    h.feed([_inventory(n, T0 + 190, 1) for n in HELD])  # the first input past the tick at T0 + 180
    for p in range(PARTS):  # the node stage reads all of it before any decision comes back
        while h.events[p]:
            h._node_input(p, 0.0)
    for p in range(PARTS):  # partitions without nodes are idle; the others' input moved them
        if not h.node.partitions[p].nodes:
            h.guard_in.append(("progress", (p, h.node.progress(p, 1e12, h.node.partitions[p].position))))
    items = [x for kind, x in h.guard_in if kind == "item"]
    assert {i.node for i in items} == held, "every held node proposes at the tick"  # type: ignore[attr-defined]
    decided = len(h.decisions)
    while h.guard_in:
        h._guard_input(0.0)
    assert len(h.decisions) - decided == len(held), "the tick's proposals waited for one another"
    assert len(h.guard.watermark) == 0


def test_ticks_reach_the_guard_before_an_event_stamped_with_the_ticks_time(tmp_path: Path) -> None:
    """Offline replay runs every node's tick at T before any event stamped T. An event at exactly T
    for a node named before the ticking ones (a000) competes with their re-proposals for the pool's
    headroom; ordered by plain (time, node) it reached the guard first and the queue came out in
    another order than offline replay's."""
    nodes = ["a000", *HELD]
    lines = [_inventory(n, T0, 0) for n in nodes] + [_xid79(n, T0 + 60) for n in HELD]
    lines += [_xid79("a000", T0 + 120), *(_inventory(n, T0 + 190, 1) for n in nodes)]
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    offline, _ = run_offline(str(path), load_policy(None), None, None, None, False)
    at_tick = [d for d in offline if d.time.timestamp() == T0 + 120]
    assert any(d.node == "a000" for d in at_tick) and len(at_tick) > 10, "the case is not built"
    for seed in (1, 2):
        h = Harness(seed)
        h.feed(lines)
        assert [d.id for d in h.run()] == [d.id for d in offline]


def test_a_scoped_change_naming_one_node_reaches_every_partition_as_offline(tmp_path: Path) -> None:
    """A pool-wide driver change written keyed by one node (as a third-party producer would): the node
    stage that reads it publishes its fleet-wide copy to every partition, and the pool's other nodes
    decide what offline replay decides (their GPU failures are the change's, not hardware). The
    failures are written after the copies landed, as they would be minutes after a real rollout."""
    from tests.unit.test_scoped_change import named_rollout

    path, named = named_rollout(tmp_path)
    offline, _ = run_offline(str(path), load_policy(None), None, None, None, False)
    lines = [raw for _, raw in iter_lines(path)]
    cut = next(i for i, raw in enumerate(lines) if b'"change.event"' in raw) + 1
    h = Harness(4)
    h.feed(lines[:cut])
    while any(h.events):  # the stream up to the change, and its copies, are read
        h._node_input(h.rng.choice([p for p in range(PARTS) if h.events[p]]), 0.0)
    h.feed(lines[cut:])
    streamed = h.run()
    changed = [d for d in streamed if d.failure_class == "change_regression" and d.node != named]
    assert len({d.node for d in changed}) >= 3
    assert by_node(streamed) == by_node(offline)
    assert {d.id: d for d in streamed} == {d.id: d for d in offline}
