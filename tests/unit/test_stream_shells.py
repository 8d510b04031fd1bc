"""The streaming runtime (NodeShell, GuardShell, WorkerShell) driven through in-memory ports.

The real policy engine and stages run; only Kafka and Faust's tables are lists (tests/fakes/
stream_ports.py), so the order of writes, sends and acknowledgements the durability rules need is
asserted directly. The same classes run against the real broker in tests/integration/
test_stream_kafka.py and test_stream_gaps.py.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import pytest
from builders import inventory, sample, xid
from fakes.stream_ports import NAMES, TP, Delivered, MemoryPipeline

from policy.engine import Engine, NodeRuntime, guard_from_bytes, guard_to_bytes
from policy.model import load_policy
from schemas.decision import Decision
from schemas.proposal import Proposal, Registration
from schemas.recording import dumps
from schemas.topics import TOPIC_BY_NAME, Topic
from streams.pipeline.guard_shell import GUARD_KEY, SENT_KEY, GuardShell
from streams.pipeline.guard_stage import GuardStage
from streams.pipeline.heap import HeapKeeper
from streams.pipeline.node_stage import NodeStage, partition_key
from streams.pipeline.worker_shell import WorkerShell

PARTS = TOPIC_BY_NAME[Topic.EVENTS].partitions
NODE = "n1"
P = zlib.crc32(NODE.encode()) % PARTS


def _pipeline(**kw: Any) -> MemoryPipeline:
    e = Engine(load_policy(None))
    stage = NodeStage(e, NodeRuntime.from_bytes, e.gate_cfg, e.policy.tick_s, checkpoint_events=1000)
    kinds: dict[str, Any] = {"proposal": Proposal, "registration": Registration}
    return MemoryPipeline(
        stage, lambda: GuardStage(e, guard_to_bytes, guard_from_bytes, kinds, PARTS, 30.0), **kw
    )


def _events(pipe: MemoryPipeline, *events: Any) -> None:
    for ev in events:
        msg = pipe.kafka.produce(Topic.EVENTS, NODE.encode(), dumps(ev))
        assert msg.partition == P


def _index(journal: list[tuple[Any, ...]], entry: tuple[Any, ...]) -> int:
    return journal.index(entry)


def test_a_proposing_nodes_state_is_written_before_its_item_leaves_and_acked_by_its_checkpoint() -> None:
    async def run() -> None:
        pipe = _pipeline()
        _events(pipe, inventory(NODE), sample(NODE, 10), xid(NODE, 20, 79))
        for msg in pipe.pending([Topic.EVENTS]):
            await pipe.deliver(msg)
        journal = pipe.kafka.journal
        sends = [e for e in journal if e[0] == "send" and e[1] == Topic.PROPOSALS]
        assert [e[3] for e in sends] == [NODE, NODE]  # the registration, then the Xid 79 proposal
        for at in [i for i, e in enumerate(journal) if e in sends]:
            before = journal[:at]
            assert before[-1] == ("flush",), "the node's state is flushed right before its item leaves"
            assert any(e[0] == "write" and e[1] == "nodes" and e[3] == P for e in before)
        assert pipe.kafka.kinds("ack") == [], "nothing is acknowledged before the partition's checkpoint"

        await pipe.node.checkpoint(P)
        acks = pipe.kafka.kinds("ack")
        assert acks == [("ack", Topic.EVENTS, P, o) for o in range(3)]
        first_ack = _index(journal, acks[0])
        partition_write = _index(journal, ("write", "nodes", partition_key(P), P))
        assert partition_write < first_ack and journal[partition_write + 1] == ("flush",)
        assert pipe.kafka.committed[TP(Topic.EVENTS, P)] == 3

    asyncio.run(run())


def test_a_skipped_range_is_read_back_from_the_log_and_applied_before_the_message_after_it() -> None:
    async def run() -> None:
        pipe = _pipeline()
        _events(pipe, inventory(NODE), sample(NODE, 10), xid(NODE, 20, 79), sample(NODE, 30))
        log = pipe.kafka.logs[TP(Topic.EVENTS, P)]
        await pipe.deliver(log[0])
        await pipe.deliver(log[3])  # offsets 1 and 2 never delivered by the stream
        journal = pipe.kafka.journal
        read_back = ("read back", "node", Topic.EVENTS, P, 1, 3)
        assert read_back in journal
        proposals = [i for i, e in enumerate(journal) if e[0] == "send" and e[1] == Topic.PROPOSALS]
        assert len(proposals) == 2 and proposals[0] < _index(journal, read_back) < proposals[1], (
            "the registration left before the gap; the skipped Xid 79's proposal after its read-back"
        )
        assert pipe.node.stage.partitions[P].inputs.next["events"] == 4
        await pipe.node.checkpoint(P)
        # Only delivered records are acknowledged; the read-back ones count as read through them.
        assert pipe.kafka.kinds("ack") == [("ack", Topic.EVENTS, P, 0), ("ack", Topic.EVENTS, P, 3)]

    asyncio.run(run())


def test_a_revoked_partition_drops_what_was_not_checkpointed_and_is_restored_from_the_table() -> None:
    async def run() -> None:
        pipe = _pipeline()
        _events(pipe, inventory(NODE), sample(NODE, 10))
        log = pipe.kafka.logs[TP(Topic.EVENTS, P)]
        await pipe.deliver(log[0])
        await pipe.node.checkpoint(P)
        await pipe.deliver(log[1])
        pipe.node.revoked(P)
        assert P not in pipe.node.stage.partitions and P not in pipe.node.held
        assert pipe.kafka.kinds("ack") == [("ack", Topic.EVENTS, P, 0)], "revoked input is never acked"
        await pipe.deliver(log[1])  # re-delivered from the committed offset
        assert pipe.node.stage.partitions[P].inputs.next["events"] == 2
        assert NODE in pipe.node.stage.partitions[P].nodes, "restored from the table, not from scratch"

    asyncio.run(run())


def _decisions(pipe: MemoryPipeline) -> list[Decision]:
    return [Decision.model_validate_json(m.value) for m in pipe.kafka.records(Topic.DECISIONS)]


def test_an_xid_79_goes_through_both_stages_and_the_guard_persists_before_it_sends_and_acks_after() -> None:
    async def run() -> None:
        pipe = _pipeline()
        _events(pipe, inventory(NODE), sample(NODE, 10), xid(NODE, 20, 79))
        await pipe.run()
        decisions = _decisions(pipe)
        assert [d.node for d in decisions] == [NODE]
        journal = pipe.kafka.journal
        sent = _index(journal, ("send", Topic.DECISIONS, P, NODE))
        snapshot = max(i for i, e in enumerate(journal[:sent]) if e[:3] == ("write", "guard", GUARD_KEY))
        assert journal[snapshot + 1] == ("flush",)
        confirmed = _index(journal, ("write", "guard", SENT_KEY, 0))
        proposal_offset = next(
            m.offset
            for m in pipe.kafka.records(Topic.PROPOSALS)
            if dict(m.headers)["breakfix-kind"] == b"proposal"
        )
        ack = _index(journal, ("ack", Topic.PROPOSALS, 0, proposal_offset))
        assert snapshot < sent < confirmed < ack
        assert pipe.position[TP(Topic.DECISIONS, P)] == 1, "the decision came back to its node's partition"

    asyncio.run(run())


def test_a_guard_that_crashed_before_sending_re_sends_its_outbox_once_after_a_restart() -> None:
    async def run() -> None:
        pipe = _pipeline()
        out = pipe.guard_ports.out
        real_send = out.send

        async def crash_on_decisions(topic: str, *args: Any, **kw: Any) -> Any:
            if topic == Topic.DECISIONS:
                raise ConnectionError("the broker went away")
            return await real_send(topic, *args, **kw)

        out.send = crash_on_decisions  # type: ignore[method-assign]
        _events(pipe, inventory(NODE), sample(NODE, 10), xid(NODE, 20, 79))
        with pytest.raises(ConnectionError):
            await pipe.run()
        assert _decisions(pipe) == []
        out.send = real_send  # type: ignore[method-assign]

        async def take_over() -> None:
            """A new guard: takes the partition over and is re-delivered what was not acknowledged."""
            guard = GuardShell(pipe.guard.new_stage, pipe.guard_ports, NAMES, 10.0)
            await guard.assigned()
            committed = pipe.kafka.committed.get(TP(Topic.PROPOSALS, 0), 0)
            for msg in pipe.kafka.logs[TP(Topic.PROPOSALS, 0)][committed:]:
                await guard.input(Delivered(msg))

        await take_over()
        assert [d.node for d in _decisions(pipe)] == [NODE], "the persisted outbox is sent after takeover"
        await take_over()
        assert len(_decisions(pipe)) == 1, "a confirmed decision is never sent twice"

    asyncio.run(run())


def test_the_worker_drops_input_taken_before_a_rebalance_or_of_a_partition_it_no_longer_holds() -> None:
    async def run() -> None:
        pipe = _pipeline()
        assignment = {TP(Topic.EVENTS, P)}
        heap = HeapKeeper(3600.0, 3600.0, 0.0)
        worker = WorkerShell(pipe.node, pipe.guard, lambda: True, lambda: assignment, heap, pipe.clock)
        worker.assigned()
        _events(pipe, inventory(NODE), sample(NODE, 10))
        log = pipe.kafka.logs[TP(Topic.EVENTS, P)]
        await worker.node_input(Delivered(log[0]), lambda: True)
        assert pipe.node.held[P] != []
        await worker.revoked({TP(Topic.EVENTS, P)})
        assert P not in pipe.node.held
        await worker.node_input(Delivered(log[1]), lambda: True)  # no longer this worker's
        assert P not in pipe.node.stage.partitions
        worker.assigned()
        await worker.node_input(Delivered(log[0]), lambda: True)
        assert [e.message.offset for e in pipe.node.held[P]] == [0]

    asyncio.run(run())
