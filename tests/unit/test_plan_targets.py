"""Which nodes a repair plan targets: only nodes in a state of the plan's failure class unless nodes
are named, never a Healthy node unless named (and then the plan says so)."""

from __future__ import annotations

from typing import Any

import pytest

from actuators.playbooks import load_catalog
from breakfix.api.plans import PlanError, PlanRequest, plan_content
from policy.model import load_policy


def _node(name: str, state: str = "Healthy", klass: str | None = None) -> dict[str, Any]:
    return {"node": name, "pool": "p", "rack": "r1", "sku": "h100", "gpus": 8, "state": state,
            "failure_class": klass}  # fmt: skip


FLEET = [
    _node("n1", "Quarantined", "gpu_hardware"),
    _node("n2", "Quarantined", "thermal_power"),
    _node("n3", "Suspect", "gpu_hardware"),
    *[_node(f"h{i}") for i in range(5)],
    _node("h9", "Healthy", "gpu_hardware"),  # returned to service after an old gpu_hardware fault
]


def _plan(**req: Any) -> Any:
    body = PlanRequest.model_validate({"pool": "p", "failure_class": "gpu_hardware", **req})
    return plan_content(body, FLEET, load_catalog(), load_policy())


def test_without_selectors_only_nodes_in_a_state_of_the_class_are_planned() -> None:
    assert [n.node for n in _plan().nodes] == ["n1", "n3"]


def test_a_state_selector_narrows_the_class_never_widens_it() -> None:
    assert [n.node for n in _plan(selector={"state": "Quarantined"}).nodes] == ["n1"]


def test_healthy_nodes_only_when_named_and_the_plan_says_so() -> None:
    with pytest.raises(PlanError, match="only when named"):
        _plan(selector={"state": "Healthy"})
    named = _plan(nodes=["h1", "n1"])
    assert [n.node for n in named.nodes] == ["h1", "n1"]
    assert named.notes == ["h1 is Healthy: included only because it was named"]


def test_a_pool_with_no_node_of_the_class_is_refused_with_the_next_step() -> None:
    body = PlanRequest.model_validate({"pool": "p", "failure_class": "node_os"})
    with pytest.raises(PlanError, match="name nodes with --node"):
        plan_content(body, FLEET, load_catalog(), load_policy())


def test_playbook_approver_roles_come_from_the_role_table() -> None:
    """A playbook may only name a role of the API's role table that can approve plans."""
    from typing import get_args

    from actuators.playbooks.model import ApproverRole
    from breakfix.api.roles import ROLES, roles_for

    approvers = set(get_args(ApproverRole))
    assert approvers == set(roles_for("plans.approve")) and approvers <= set(ROLES)
    for pb in load_catalog().playbooks.values():
        assert pb.approval.role in (None, *get_args(ApproverRole)), pb.name
