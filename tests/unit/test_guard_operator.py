"""An approved operator repair plan's step is judged by the guard, not run by the API.

The API signs one operator proposal per node; the guard refuses one it did not sign (or an old one),
judges the others with its own guardrails (kill switch, exclusion, rate limit, headroom, and
concurrency when a serving node leaves) taking the node's state from its own record, lets the plan's
approvals stand for the class's mode, and issues a decision that names the playbook and the
approvers under its seal; the actuator stage builds its work request from that decision alone.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from actuators.workflow.request import Approver, from_decision
from policy.engine import Engine, guard_from_bytes, guard_to_bytes
from policy.lifecycle import Life, apply
from policy.model import load_policy
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.deadletter import DeadLetterReason
from schemas.decision import ActionKind, Decision
from schemas.proposal import OperatorProposal, PlanApprover, Proposal, Registration
from schemas.signing import Keyring, Signer
from schemas.topics import Topic
from streams.pipeline.guard_shell import OPERATOR, GuardShell
from streams.pipeline.guard_stage import GuardStage
from tests.builders import T0
from tests.unit.test_guard import place, prop

SHIPPED = load_policy()  # gpu_hardware recommends only: the plan's approval stands for the mode
KINDS = {"proposal": Proposal, "registration": Registration}
API, GUARD = Signer.generate("api-k", "api"), Signer.generate("guard-k", "guard")
RING = Keyring.parse(API.trust_line() + GUARD.trust_line())


def guard(nodes: int = 10, racks: int = 10) -> GuardStage:
    """Nodes n0..n{nodes-1} of pool p1 (8 GPUs each), one per rack unless ``racks`` is smaller."""
    stage = GuardStage(Engine(SHIPPED), guard_to_bytes, guard_from_bytes, KINDS, 1, 1e12)
    t = datetime.fromtimestamp(T0, UTC)
    for i in range(nodes):
        reg = Registration(node=f"n{i}", time=t, placement=place(i, f"r{i % racks}"))
        stage.on_item("registration", (T0, f"n{i}", 0), f"reg-n{i}", reg.model_dump_json().encode(), 0, 0.0)
    stage.on_progress(0, (T0 + 1, "", 0))
    stage.release(0.0)
    return stage


def step(node: str, wf: str = "wf-1", action: ActionKind = ActionKind.REBOOT) -> OperatorProposal:
    return OperatorProposal(
        id=f"{wf}.{node}", time=datetime.fromtimestamp(T0 + 100, UTC), node=node,
        failure_class="gpu_hardware", action=action, playbook="gpu-reboot", plan_id="plan-1",
        workflow_id=wf, requested_by="olga", approvers=[PlanApprover(actor="ann", role="approver")],
        placement=place(0, "elsewhere", pool="claimed-by-the-message"),
    )  # fmt: skip


def judged(stage: GuardStage, op: OperatorProposal) -> Decision:
    stage.on_operator(op)
    out, stage.outbox = stage.outbox, []
    [d] = out
    return d


def quarantine(stage: GuardStage, node: str) -> None:
    """The node stage's own proposal quarantines the node (shipped policy: recommend, not executed)."""
    p = prop(node, 10, place(int(node[1:]), f"r{int(node[1:])}"))
    stage.on_item("proposal", (T0 + 10, node, 0), p.id, p.model_dump_json().encode(), 0, 0.0)
    stage.on_progress(0, (T0 + 11, "", 0))
    stage.release(0.0)
    stage.outbox = []
    assert stage.g.nodes[node].state is NodeState.QUARANTINED


def test_a_plan_step_for_a_quarantined_node_executes_with_its_playbook_and_approvers() -> None:
    stage = guard()
    quarantine(stage, "n1")
    d = judged(stage, step("n1"))
    assert d.executable and d.id == "d-wf-1.n1" and d.trigger == "operator_plan"
    assert (d.from_state, d.to_state) == (NodeState.QUARANTINED, NodeState.QUARANTINED)
    assert (d.playbook, d.plan_id, [a.actor for a in d.approvers]) == ("gpu-reboot", "plan-1", ["ann"])
    checks = {c.name: c for c in d.guard}
    assert checks["mode"].passed and checks["mode"].figures["mode"] == "recommend"
    assert checks["headroom"].passed and "concurrency_rack" not in checks  # already out: no slot taken
    req = from_decision(d)  # the actuator stage's request comes from the signed decision alone
    assert (req.playbook, req.initiator) == ("gpu-reboot", "human")
    assert req.approvers == (Approver("ann", "approver"),)
    assert req.headroom_ok is True
    stage.on_operator(step("n1"))  # delivered again: decided once
    assert stage.outbox == []


def test_a_healthy_node_leaves_only_within_the_guards_headroom_and_concurrency() -> None:
    stage = guard(nodes=10)  # 80 GPUs, at least 85 % healthy: one node of 8 may leave, not two
    first = judged(stage, step("n1"))
    assert first.executable
    assert (first.from_state, first.to_state) == (NodeState.HEALTHY, NodeState.QUARANTINED)
    assert stage.g.nodes["n1"].state is NodeState.QUARANTINED  # the guard counts it out from now on
    second = judged(stage, step("n2"))
    assert not second.executable and second.to_state is NodeState.HEALTHY  # refused: it stays
    failed = {c.name for c in second.guard if not c.passed}
    assert "headroom" in failed and "concurrency_pool" in failed
    placement = stage.g.nodes["n2"].placement
    assert placement.pool == "p1"  # the guard's own record, not the placement the message claimed


def test_the_kill_switch_and_an_exclusion_refuse_an_approved_plan() -> None:
    stage = guard()
    quarantine(stage, "n1")
    now = datetime.fromtimestamp(T0 + 50, UTC)
    stage.on_control(ControlMessage(id="ks", time=now, kind=ControlKind.KILLSWITCH, scope="pool:p1",
                                    value={"on": True}, actor="ann"))  # fmt: skip
    d = judged(stage, step("n1"))
    assert not d.executable and not {c.name: c for c in d.guard}["killswitch"].passed
    stage.on_control(ControlMessage(id="ks2", time=now, kind=ControlKind.KILLSWITCH, scope="pool:p1",
                                    value={"on": False}, actor="ann"))  # fmt: skip
    stage.outbox = []
    stage.on_control(ControlMessage(id="ex", time=now, kind=ControlKind.EXCLUSION, scope="node:n1",
                                    value={"on": True}, actor="ann"))  # fmt: skip
    stage.outbox = []
    d = judged(stage, step("n1", wf="wf-2"))
    assert not d.executable and not {c.name: c for c in d.guard}["exclusion"].passed


def _shell() -> GuardShell:
    def new() -> GuardStage:
        return guard()

    topics = {Topic.CONTROL: "breakfix.control", Topic.PROPOSALS: "breakfix.proposals"}
    return GuardShell(new, None, topics, 1.0, signer=GUARD, keyring=RING)  # type: ignore[arg-type]


def _deliver(shell: GuardShell, value: bytes) -> None:
    shell._apply("breakfix.proposals", [("breakfix-kind", OPERATOR.encode())], value, 7, None)


def test_the_guard_judges_only_plan_steps_the_api_signed_recently() -> None:
    doc = step("n1").model_dump(mode="json")
    refused = {
        "unsigned": orjson.dumps(doc),
        "wrong_signer": orjson.dumps(GUARD.seal(doc, time.time())),
        "expired": orjson.dumps(API.seal(doc, time.time() - 3600)),
        "bad_signature": orjson.dumps({**API.seal(doc, time.time()), "playbook": "gpu-reimage"}),
    }
    for reason, raw in refused.items():
        shell = _shell()
        _deliver(shell, raw)
        assert [x.reason for x in shell.letters] == [DeadLetterReason(reason)], reason
        assert shell.stage.outbox == [], reason
    shell = _shell()
    _deliver(shell, orjson.dumps(API.seal(doc, time.time())))
    assert shell.letters == [] and [d.id for d in shell.stage.outbox] == ["d-wf-1.n1"]
    unsigned_guard = GuardShell(guard, None, _shell().topics, 1.0)  # type: ignore[arg-type]
    _deliver(unsigned_guard, orjson.dumps(API.seal(doc, time.time())))  # cannot tell who sent it
    assert [x.reason for x in unsigned_guard.letters] == [DeadLetterReason.UNSIGNED]
    assert unsigned_guard.stage.outbox == []


def test_the_node_stage_moves_a_node_only_on_an_executed_plan_step() -> None:
    """A refused step must not take the node's decision over: its own run's results still count."""
    stage = guard()
    quarantine(stage, "n1")
    own = Life(state=NodeState.QUARANTINED, decision_id="d-own", executable=True, pending="p-1")
    stage.on_control(ControlMessage(id="ks", time=datetime.fromtimestamp(T0 + 50, UTC),
                                    kind=ControlKind.KILLSWITCH, scope="global", value={"on": True},
                                    actor="ann"))  # fmt: skip
    stage.outbox = []
    refused = judged(stage, step("n1"))
    apply(own, refused, T0 + 100)
    assert (own.decision_id, own.executable, own.pending) == ("d-own", True, "p-1")
    fresh = guard()
    quarantine(fresh, "n1")
    ran = judged(fresh, step("n1", wf="wf-2"))
    apply(own, ran, T0 + 100)
    assert (own.state, own.decision_id, own.action) == (NodeState.QUARANTINED, "d-wf-2.n1", "reboot")


def test_a_second_plan_step_for_a_node_with_a_run_in_flight_is_refused() -> None:
    """Two runs on one node race each other (a reboot during a drain): the guard lets a plan's step
    start only when no run it issued for the node is still unanswered, and none is under way."""
    stage = guard()
    quarantine(stage, "n1")
    first = judged(stage, step("n1"))
    assert first.executable and stage.g.running == {"n1": "d-wf-1.n1"}
    second = judged(stage, step("n1", wf="wf-2"))
    check = {c.name: c for c in second.guard}["in_flight"]
    assert not second.executable and not check.passed and check.figures["running"] == "d-wf-1.n1"
    third = judged(stage, step("n1", wf="wf-3"))  # a refused step never frees the first run's slot
    assert not third.executable
    restored = guard_from_bytes(guard_to_bytes(stage.g))  # the slot survives the guard's snapshot
    assert restored.running == {"n1": "d-wf-1.n1"}
    # The run reports it started: the node stage proposes Quarantined -> Repairing, the guard decides.
    started = prop("n1", 200, place(1, "r1")).model_copy(
        update={"id": "n1:started", "from_state": NodeState.QUARANTINED, "to_state": NodeState.REPAIRING,
                "trigger": "repair_started", "action": ActionKind.NONE}
    )  # fmt: skip
    stage.on_item("proposal", (T0 + 200, "n1", 0), started.id, started.model_dump_json().encode(), 0, 0.0)
    stage.on_progress(0, (T0 + 201, "", 0))
    stage.release(0.0)
    stage.outbox = []
    assert stage.g.nodes["n1"].state is NodeState.REPAIRING and "n1" not in stage.g.running
    busy = judged(stage, step("n1", wf="wf-4"))  # repairing: still in flight
    busy_check = {c.name: c for c in busy.guard}["in_flight"]
    assert not busy.executable and (busy_check.passed, busy_check.figures["state"]) == (False, "Repairing")
    other = judged(stage, step("n2", wf="wf-4"))  # another node is not held up by it (headroom is)
    assert {c.name: c for c in other.guard}["in_flight"].passed
