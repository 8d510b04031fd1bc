"""A repair plan's preview and the guard compute a pool's headroom with one function
(``policy.headroom.pool_headroom``), so what an approver is shown is what the guard will decide."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from actuators.playbooks import load_catalog
from breakfix.api.plans import PlanRequest, plan_content
from policy.guard import Guard, GuardState
from policy.headroom import pool_headroom
from policy.model import Policy, load_policy
from schemas.decision import ActionKind
from schemas.proposal import OperatorProposal, Placement, PlanApprover, Registration
from schemas.vocab import FailureClass
from tests.builders import T0


def _policy(fraction: float) -> Policy:
    base = load_policy()
    return base.model_copy(update={"headroom": base.headroom.model_copy(update={"pools": {"p1": fraction}})})


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.95])
def test_the_plan_preview_and_the_guard_agree_on_headroom(fraction: float) -> None:
    pol = _policy(fraction)
    places = {f"n{i}": Placement(pool="p1", rack=f"r{i}", sku="H100", gpus=8) for i in range(10)}
    fleet = [
        {"node": n, "pool": "p1", "rack": p.rack, "sku": p.sku, "gpus": 8, "state": "Healthy", "labels": {}}
        for n, p in places.items()
    ]
    req = PlanRequest(pool="p1", nodes=["n3"], failure_class=FailureClass.NODE_OS, action=ActionKind.REBOOT)
    [preview] = plan_content(req, fleet, load_catalog(), pol).capacity

    t = datetime.fromtimestamp(T0, UTC)
    guard, state = Guard(pol), GuardState()
    for n, p in places.items():
        guard.step(state, Registration(node=n, time=t, placement=p))
    step = OperatorProposal(
        id="wf-1.n3", time=t, node="n3", failure_class="node_os", action=ActionKind.REBOOT,
        playbook="node-reboot", plan_id="plan-1", workflow_id="wf-1", requested_by="olga",
        approvers=[PlanApprover(actor="ann", role="approver")], placement=places["n3"],
    )  # fmt: skip
    [decision] = guard.step(state, step)
    check = next(c for c in decision.guard if c.name == "headroom")

    expected = pool_headroom(80, 0, 8, fraction)
    assert check.passed is preview.headroom_ok is expected.ok
    assert check.figures["healthy_after"] == preview.healthy_gpus - preview.removed_gpus == expected.after
    assert preview.min_healthy_gpus == int(-(-expected.minimum // 1))  # the same minimum, rounded up
    assert expected.ok is (fraction <= 0.9)  # 72 of 80 healthy GPUs left: the 95 % pool refuses
