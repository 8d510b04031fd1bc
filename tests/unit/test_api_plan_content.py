"""Plan content: node selection, playbook choice, risk, capacity against headroom, approval rule,
and a content hash that moves with anything that decides what would run."""

from __future__ import annotations

from typing import Any

import pytest

from actuators.playbooks import load_catalog
from breakfix.api.plans import PlanError, PlanRequest, plan_content
from policy.model import load_policy

POLICY = load_policy()
CATALOG = load_catalog()


def fleet(states: dict[str, str]) -> list[dict[str, Any]]:
    """Rows as the state reader gives them: a node out of Healthy carries the class that moved it."""
    return [
        {
            "node": n,
            "pool": "p",
            "rack": f"r{i // 2}",
            "sku": "H100",
            "gpus": 8,
            "state": s,
            "failure_class": None if s == "Healthy" else "node_os",
        }
        for i, (n, s) in enumerate(sorted(states.items()))
    ]


FLEET = fleet({f"n{i:02d}": "Healthy" for i in range(20)} | {"n16": "Suspect", "n19": "Quarantined"})


def req(**over: Any) -> PlanRequest:
    return PlanRequest.model_validate({"pool": "p", "failure_class": "node_os", "action": "reboot", **over})


def test_capacity_counts_only_serving_gpus_removed() -> None:
    c = plan_content(req(nodes=["n01", "n19"]), FLEET, CATALOG, POLICY)
    cap = c.capacity[0]
    # 160 GPUs, 152 serving; rebooting n01 removes 8 (n19 is already out); 85% of 160 = 136 stay.
    assert (cap.total_gpus, cap.healthy_gpus, cap.removed_gpus, cap.min_healthy_gpus) == (160, 152, 8, 136)
    assert cap.headroom_ok and [n.playbook for n in c.nodes] == ["reboot", "reboot"]
    over = plan_content(req(nodes=["n01", "n02", "n03"]), FLEET, CATALOG, POLICY)
    assert over.capacity[0].removed_gpus == 24 and not over.capacity[0].headroom_ok
    assert {n.risk for n in over.nodes} == {"high"}


def test_risk_and_approval_follow_the_playbook() -> None:
    rma = plan_content(req(failure_class="gpu_hardware", action="rma", nodes=["n19"]), FLEET, CATALOG, POLICY)
    assert rma.nodes[0].risk == "high" and rma.approval.two_person and rma.approval.token_required
    ticket = plan_content(
        req(failure_class="thermal_power", action="ticket", nodes=["n03"]), FLEET, CATALOG, POLICY
    )
    assert ticket.nodes[0].risk == "low" and not ticket.approval.token_required
    assert ticket.capacity[0].removed_gpus == 0  # read-only playbooks remove nothing


def test_without_an_action_the_least_invasive_playbook_is_planned() -> None:
    thermal = plan_content(
        req(action=None, failure_class="thermal_power", nodes=["n03"]), FLEET, CATALOG, POLICY
    )
    assert (thermal.action, thermal.nodes[0].playbook) == ("ticket", "thermal-power-ticket")
    gpu = plan_content(req(action=None, failure_class="gpu_hardware", nodes=["n03"]), FLEET, CATALOG, POLICY)
    assert (gpu.action, gpu.nodes[0].playbook) == ("gpu_reset", "xid-ecc-conditional-drain-gpu-reset")


def test_selector_narrows_the_nodes_of_the_failure_class_and_never_adds_a_healthy_one() -> None:
    c = plan_content(req(selector={"rack": "r9"}), FLEET, CATALOG, POLICY)
    assert [n.node for n in c.nodes] == ["n19"]  # n18 shares the rack but is Healthy
    c = plan_content(req(), FLEET, CATALOG, POLICY)
    assert [n.node for n in c.nodes] == ["n16", "n19"]
    c = plan_content(req(selector={"state": "Suspect"}), FLEET, CATALOG, POLICY)
    assert [n.node for n in c.nodes] == ["n16"]
    with pytest.raises(PlanError, match="matches"):
        plan_content(req(selector={"rack": "r9", "state": "Suspect"}), FLEET, CATALOG, POLICY)


def test_label_selector_needs_every_label_to_match_the_nodes_inventory() -> None:
    rows = [dict(n, labels={"fabric": "ib-a" if n["node"] == "n16" else "ib-b", "zone": "z1"}) for n in FLEET]
    c = plan_content(req(selector={"labels": {"fabric": "ib-a"}}), rows, CATALOG, POLICY)
    assert [n.node for n in c.nodes] == ["n16"]
    c = plan_content(req(selector={"labels": {"fabric": "ib-b", "zone": "z1"}}), rows, CATALOG, POLICY)
    assert [n.node for n in c.nodes] == ["n19"]
    for labels in ({"fabric": "ib-a", "zone": "z2"}, {"rail": "1"}):
        with pytest.raises(PlanError, match="matches"):
            plan_content(req(selector={"labels": labels}), rows, CATALOG, POLICY)
    with pytest.raises(PlanError, match="matches"):  # a row without labels matches no label selector
        plan_content(req(selector={"labels": {"zone": "z1"}}), FLEET, CATALOG, POLICY)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"nodes": ["ghost"]}, "ghost"),
        ({"selector": {"sku": "B200"}}, "matches"),
        ({"failure_class": "monitoring", "action": "reboot"}, "no node-level playbook"),
    ],
)
def test_unplannable_requests_say_why(over: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan_content(req(**over), FLEET, CATALOG, POLICY)
    with pytest.raises(PlanError, match="no nodes"):
        plan_content(req(), [], CATALOG, POLICY)


def test_content_hash_is_stable_and_moves_with_the_fleet() -> None:
    a = plan_content(req(nodes=["n01"]), FLEET, CATALOG, POLICY).digest()
    assert a == plan_content(req(nodes=["n01"]), list(reversed(FLEET)), CATALOG, POLICY).digest()
    changed = [dict(n, state="Suspect") if n["node"] == "n01" else n for n in FLEET]
    changed = [dict(n, state="Quarantined") if n["node"] == "n02" else n for n in changed]
    assert a != plan_content(req(nodes=["n01"]), changed, CATALOG, POLICY).digest()
    assert a != plan_content(req(nodes=["n01"], dry_run=False), FLEET, CATALOG, POLICY).digest()
