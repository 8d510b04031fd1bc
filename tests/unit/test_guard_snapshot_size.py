"""The guard's changelog value for a 10,000-node fleet with a deep capacity queue fits one broker
message (1 MB by default): uncompressed it did not, and the load test's workers crashed on it."""

from __future__ import annotations

from datetime import UTC, datetime

from policy.engine import Engine, guard_from_bytes, guard_to_bytes
from policy.model import load_policy
from schemas.proposal import Placement, Proposal, Registration
from streams.pipeline.guard_stage import GuardStage
from tests.fixtures.proposals import xid79_proposal

NODES = 10_000
QUEUED = 2_000
BROKER_MAX_MESSAGE = 1_048_576


def test_ten_thousand_registered_nodes_fit_one_message_and_restore() -> None:
    engine = Engine(load_policy(None))
    stage = _guard(engine)
    t = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(NODES):
        node = f"gpu-{i:05d}"
        reg = Registration(
            node=node,
            time=t,
            placement=Placement(pool=f"pool-{i % 3}", rack=f"rack-{i // 16:04d}", sku="H100", gpus=8),
        )
        stage.on_item(
            "registration",
            (t.timestamp(), node, 0),
            f"reg-{node}",
            reg.model_dump_json().encode(),
            i % 12,
            0.0,
        )
    for i in range(QUEUED):  # a storm the incident logic did not absorb: most wait for a pool slot
        node = f"gpu-{i * 5:05d}"
        p = xid79_proposal(node, t, i)
        stage.on_item(
            "proposal", (t.timestamp() + 1, node, 1), p.id, p.model_dump_json().encode(), i % 12, 0.0
        )
    for partition in range(12):  # every node-stage partition has moved past them
        stage.on_progress(partition, (t.timestamp() + 60, "", 0))
    stage.release(0.0)
    value = stage.snapshot()
    assert len(value) < BROKER_MAX_MESSAGE // 2, f"guard snapshot is {len(value):,} bytes for {NODES:,} nodes"
    again = _guard(engine)
    again.restore(value)
    assert again.node_partition == stage.node_partition and again.outbox == stage.outbox
    assert len(again.outbox) >= QUEUED, "the proposals must have been decided (and mostly held)"


def _guard(engine: Engine) -> GuardStage:
    """A guard over 12 node-stage partitions that never gives up waiting on one of them."""
    kinds = {"proposal": Proposal, "registration": Registration}
    return GuardStage(engine, guard_to_bytes, guard_from_bytes, kinds, 12, 1e12)
