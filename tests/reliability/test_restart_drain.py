"""The double-SIGKILL restart bug, without Kafka: a node's record ahead of its partition.

A node awaiting its decision buffers its input; its record is written when its proposal leaves, which
can be after more input arrived (proposals are batched), so after a crash the record holds input the
partition has not re-read yet. When the re-delivered decision reaches the node before that input is
re-read, draining the buffer used to move the partition's clock to the buffered events' times: the next
event then ran the ticks of every other node of the partition before their own re-read input, which
made agent_silent / evidence_cleared decisions offline replay never makes (tests/reliability/
test_faults.py saw them on the real broker). Streaming must equal offline replay here.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from integration import test_stream_stages as stages
from integration.test_stream_stages import PARTS, Harness, by_node
from reliability.safety import assert_safe

from breakfix.cli.replay_cmd import run_offline
from policy.model import load_policy

recording = stages.recording
"""The stage tests' simulated recording (40 nodes x 2 h, module-scoped fixture)."""


def _pending_node(h: Harness) -> tuple[int, str] | None:
    for p, ps in sorted(h.node.partitions.items()):
        for n, slot in sorted(ps.nodes.items()):
            if slot.pending and slot.hold is not None:
                return p, n
    return None


def test_decision_before_the_reread_input_does_not_move_the_partition_clock(recording: Path) -> None:
    offline, _ = run_offline(str(recording), load_policy(None), None, None, None, False)
    h = Harness(3, checkpoint_events=10**9)  # no periodic full checkpoint: input stays unacknowledged
    h.load(recording)
    withheld: deque[bytes] = deque()
    target = None
    while any(h.events):
        if h.guard_in:
            h._guard_input(0.0)
            continue
        if target is None and (target := _pending_node(h)) is not None:
            h._checkpoint(target[0])  # the partition's record: behind the node's input from here on
        if target is not None:  # the node's decision waits: it keeps buffering its input
            p, node = target
            keep = [d for d in h.decisions_in[p] if f'"node":"{node}"'.encode() not in d]
            withheld.extend(d for d in h.decisions_in[p] if d not in keep)
            h.decisions_in[p] = deque(keep)
            slot = h.node.partitions[p].nodes[node]
            if withheld and sum(b.event is not None for b in slot.buffer) >= 5:
                break
        h._node_input(h.rng.choice([q for q in range(PARTS) if h.events[q] or h.decisions_in[q]]), 0.0)
    assert target is not None and withheld, "no decided node buffered input: the case is not covered"
    p, node = target
    for key, value in h.node.checkpoint_nodes(p, [node]):  # written with its buffer, as when batched
        h.tables[key] = value
    h._restart_node_stage()
    h.decisions_in[p].extendleft(reversed(withheld))  # back first, before the input is re-read
    streamed = h.run()
    assert_safe(streamed, recording)
    assert by_node(streamed) == by_node(offline), f"{node} drained ahead of partition {p}"
