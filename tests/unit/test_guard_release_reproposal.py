"""The node stage and the guard together (the real ``Engine``, as replay and streaming run it): a proposal
that outlived the stale cutoff in the capacity queue is re-judged by its node, on the node's own time: a
fault that is still there is proposed again and quarantined when a slot frees; one that ended (the
flapping node of the scored run) is withdrawn and never quarantined.
"""

from __future__ import annotations

from datetime import UTC, datetime

from policy.engine import Engine, NodeRuntime, NodeStep
from policy.guard import EXPIRED, GuardState
from policy.model import load_policy
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision
from schemas.events import Envelope
from schemas.proposal import Proposal, Registration
from tests.builders import T0, ev, inventory, xid

POLICY = load_policy().model_copy(
    update={"concurrency": load_policy().concurrency.model_copy(update={"per_pool": 2, "per_sku": 4})}
)
"""A site that allows two nodes of a pool in flight (the shipped default is one)."""
HUNG = "[661560.000000] INFO: task containerd:6160 blocked for more than 120 seconds."
Q, S, H = NodeState.QUARANTINED, NodeState.SUSPECT, NodeState.HEALTHY


class Fleet:
    """100 nodes of one pool; decisions are applied back to their nodes as the stages do."""

    def __init__(self) -> None:
        self.engine = Engine(POLICY)
        self.guard: GuardState = self.engine.new_guard()
        self.nodes: dict[str, NodeRuntime] = {}
        self.decisions: list[Decision] = []
        for i in range(100):
            self.feed(inventory(f"n{i}", rack=f"r{i}"))

    def feed(self, e: Envelope) -> list[Decision]:
        assert e.node is not None
        step = self.engine.node_step(self.nodes.get(e.node), e, e.time.timestamp())
        assert step.rejection is None and step.runtime is not None, step.rejection
        self.nodes[e.node] = step.runtime
        return self._route(step)

    def tick(self, node: str, t: float) -> list[Decision]:
        return self._route(self.engine.tick(self.nodes[node], T0 + t))

    def guard_step(self, p: Proposal | Registration) -> list[Decision]:
        out = self.engine.guard_step(self.guard, p)
        for d in out:
            self.engine.apply_decision(self.nodes[d.node], d)
        self.decisions += out
        return out

    def _route(self, step: NodeStep) -> list[Decision]:
        return [d for p in step.proposals for d in self.guard_step(p)]

    def of(self, node: str) -> list[Decision]:
        return [d for d in self.decisions if d.node == node]


def flapping(node: str, start: float, end: float) -> list[Envelope]:
    """Ready flaps every 2 minutes with a hung container runtime, as the flapping-node scenario does."""
    out = []
    for k in range(int((end - start) // 120)):
        t = start + 120 * k
        if k % 2 == 0:
            out.append(ev("node.kernel", node, t, {"line": HUNG}))
        status = "False" if k % 2 == 0 else "True"
        out.append(ev("node.condition", node, t, {"condition": "Ready", "status": status}))
    return out


def _free_slot(f: Fleet, node: str, t: float) -> list[Decision]:
    """An operator returns a quarantined node: the pool gets a slot back."""
    rt = f.nodes[node]
    assert rt.placement is not None and rt.life.state is Q
    back = Proposal(
        id=f"{node}:return:{t}",
        time=datetime.fromtimestamp(T0 + t, UTC),
        node=node,
        from_state=Q,
        to_state=H,
        trigger="cleared_without_action",
        failure_class=rt.life.failure_class,
        confidence=0.0,
        action=ActionKind.RETURN_TO_SERVICE,
        reasons=["returned by hand"],
        evidence=[],
        evidence_time=datetime.fromtimestamp(T0 + t, UTC),
        placement=rt.placement,
    )
    return f.guard_step(back)


def _pool_full_and_n2_waiting(f: Fleet, flap_until: float) -> Decision:
    for node in ("n0", "n1"):  # Xid 79 takes both of the pool's slots (per_pool: 2)
        assert [d.to_state for d in f.feed(xid(node, 10, 79))] == [Q]
    for e in flapping("n2", 20, flap_until):
        f.feed(e)
    held = [d for d in f.of("n2") if d.held]
    assert len(held) == 1 and held[0].reasons[0].startswith(
        "waiting for capacity (concurrency_pool): in flight n0"
    )
    return held[0]


def _others_do_not_expire_it(f: Fleet, held: Decision) -> float:
    """Another node's proposal past the cutoff moves the guard's clock but retires nothing: only n2's own
    time may, so a streaming n2 sees the answer at the same point of its input as an offline one."""
    t = held.time.timestamp() - T0 + POLICY.stale_cutoff_s + 60
    f.feed(ev("node.kernel", "n9", t, {"line": HUNG}))
    assert not [d for d in f.of("n2") if d.trigger == EXPIRED]
    assert [p.node for p in f.guard.waiting] == ["n2"] and f.nodes["n2"].life.held_at is not None
    return t


def test_a_fault_that_ended_while_its_proposal_waited_is_withdrawn_by_its_node() -> None:
    f = Fleet()
    held = _pool_full_and_n2_waiting(f, flap_until=980)  # flapping for 16 minutes, then settled
    t = _others_do_not_expire_it(f, held)
    f.tick("n2", t)  # the node re-judges on its own clock: its evidence has decayed
    expired = [d for d in f.of("n2") if d.trigger == EXPIRED]
    assert len(expired) == 1 and expired[0].to_state is S and not expired[0].executable
    assert expired[0].time.timestamp() == T0 + t and expired[0].id == f"{held.id}:{EXPIRED}"
    life = f.nodes["n2"].life
    assert life.held_class is None and life.held_at is None and life.pending is None
    assert f.guard.waiting == []
    for k in range(1, 6):
        f.tick("n2", t + POLICY.tick_s * k)
    _free_slot(f, "n0", t + 600)
    assert not [d for d in f.of("n2") if d.to_state is Q or (d.held and d.time.timestamp() > T0 + t)]
    assert f.nodes["n2"].life.state is S


def test_a_fault_still_there_is_renewed_by_its_node_and_quarantined_when_a_slot_frees() -> None:
    f = Fleet()
    held = _pool_full_and_n2_waiting(f, flap_until=980)
    t = _others_do_not_expire_it(f, held)
    for e in flapping("n2", 980, t + 600):  # the node is still flapping
        f.feed(e)
    assert not [d for d in f.of("n2") if d.trigger == EXPIRED]
    again = [d for d in f.of("n2") if d.held and d.time.timestamp() > held.time.timestamp()]
    assert len(again) == 1 and again[0].reasons[0].startswith(
        "waiting for capacity (concurrency_pool): in flight n0"
    )
    assert again[0].time.timestamp() >= held.time.timestamp() + POLICY.stale_cutoff_s
    assert [p.id for p in f.guard.waiting] == [again[0].id.removeprefix("d-")]
    out = _free_slot(f, "n0", t + 700)
    assert [(d.node, d.to_state) for d in out] == [("n0", H), ("n2", Q)]
    assert out[1].reasons[0] == "released: capacity freed" and out[1].id == f"{again[0].id}:released"
    assert f.nodes["n2"].life.state is Q
