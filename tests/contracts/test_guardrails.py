"""One contract suite over every guardrail of ``policy.guardrails`` (river's ``check_estimator`` idea):
each has a case below that makes it refuse, and every case is checked for what all guardrails
promise: a refusing guardrail never lets the decision execute, names itself with the figures it
judged, and the same inputs give the same decisions. A baseline proves the suite can fail: the same
fleet with nothing wrong executes with every check passed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from policy.guard import EXPIRED, Guard, GuardState
from policy.guardrails import GUARDRAILS
from policy.model import Policy, load_policy, parse_policy
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision
from schemas.proposal import OperatorProposal, Placement, PlanApprover, Proposal, Registration
from tests.builders import T0

Q, S, H = NodeState.QUARANTINED, NodeState.SUSPECT, NodeState.HEALTHY
Input = Proposal | Registration | ControlMessage | OperatorProposal


def policy(**over: Any) -> Policy:
    """The shipped policy with gpu_hardware automatic and a site's looser concurrency, then ``over``."""
    raw = load_policy().model_dump(mode="json")
    raw["modes"]["classes"] = {"gpu_hardware": "auto"}
    raw["concurrency"] |= {"per_pool": 2, "per_sku": 4}
    for key, value in over.items():
        raw[key] = raw[key] | value if isinstance(value, dict) else value
    return parse_policy(raw)


def at(t: float) -> datetime:
    return datetime.fromtimestamp(T0 + t, UTC)


def place(rack: str = "r0", pool: str = "p1", **labels: str) -> Placement:
    return Placement(pool=pool, rack=rack, sku="H100", gpus=8, labels=dict(labels))


def prop(node: str, t: float, pl: Placement | None = None, to: NodeState = Q, **over: Any) -> Proposal:
    fields: dict[str, Any] = dict(
        id=f"{node}:{t}:{to.value}", time=at(t), node=node, from_state=S, to_state=to,
        trigger="confidence_over_threshold", failure_class="gpu_hardware", confidence=0.9,
        action=ActionKind.REBOOT if to is Q else ActionKind.RETURN_TO_SERVICE, reasons=["xid.79"],
        evidence=["e1"], evidence_time=at(t), placement=pl or place(),
    )  # fmt: skip
    fields.update(over)
    return Proposal(**fields)


def fleet(n: int = 40, racks: int = 10, pools: int = 1) -> list[Input]:
    return [
        Registration(node=f"n{i}", time=at(0), placement=place(f"r{i % racks}", f"p{i % pools + 1}"))
        for i in range(n)
    ]


def ctl(kind: ControlKind, scope: str = "global", **value: object) -> ControlMessage:
    return ControlMessage(
        id=f"c-{kind}", time=at(1), kind=kind, scope=scope, value=dict(value), actor="alice"
    )


def plan_step(node: str, t: float, wf: str = "wf-1") -> OperatorProposal:
    """One node's step of an approved operator repair plan, as the API sends it to the guard."""
    return OperatorProposal(
        id=f"{wf}.{node}", time=at(t), node=node, failure_class="gpu_hardware", action=ActionKind.REBOOT,
        playbook="gpu-reboot", plan_id="plan-1", workflow_id=wf, requested_by="olga",
        approvers=[PlanApprover(actor="ann", role="approver")], placement=place(),
    )  # fmt: skip


Case = tuple[Policy, list[Input]]
"""A policy and the inputs whose last decision the guardrail refuses."""

CASES: dict[str, Callable[[], Case]] = {
    "replay": lambda: (policy(), [*fleet(), prop("n0", 10, replay=True)]),
    "stale": lambda: (policy(), [*fleet(), prop("n0", 4000, evidence_time=at(400))]),
    "killswitch": lambda: (
        policy(),
        [*fleet(), ctl(ControlKind.KILLSWITCH, "pool:p1", on=True), prop("n0", 10)],
    ),
    "mode": lambda: (policy(), [*fleet(), prop("n0", 10, failure_class="node_os")]),
    "exclusion": lambda: (policy(), [*fleet(), prop("n0", 10, place(**{"breakfix.io/exclude": "true"}))]),
    "approval": lambda: (policy(), [*fleet(), prop("n0", 10, action=ActionKind.RMA)]),
    "rate_limit": lambda: (
        policy(rate_limit={"max_executable_per_hour": 1}),
        [*fleet(), prop("n0", 10, place("r0")), prop("n1", 11, place("r1"))],
    ),
    "concurrency_rack": lambda: (
        policy(),
        [*fleet(), prop("n0", 10, place("r0")), prop("n10", 11, place("r0"))],
    ),
    "concurrency_pool": lambda: (
        policy(),
        [*fleet(100), prop("n0", 10, place("r0")), prop("n1", 11, place("r1")), prop("n2", 12, place("r2"))],
    ),
    "concurrency_sku": lambda: (
        policy(concurrency={"per_pool": 9, "per_sku": 1}),
        [*fleet(), prop("n0", 10, place("r0")), prop("n1", 11, place("r1"))],
    ),
    "headroom": lambda: (
        policy(),
        [
            *fleet(6, racks=6),
            prop(
                "n1", 5, place("r1"), to=NodeState.ESCALATED, action=ActionKind.RMA, failure_class="node_os"
            ),
            prop("n0", 10, place("r0")),
        ],
    ),
    "in_flight": lambda: (policy(), [*fleet(), prop("n0", 10, place("r0")), plan_step("n0", 11)]),
    "breaker": lambda: (
        policy(),
        [
            *fleet(40, racks=40, pools=4),
            *(prop(f"n{i}", 10 + i, place(f"r{i}", f"p{i % 4 + 1}")) for i in range(3)),
        ],
    ),
    "blast_radius": lambda: (
        policy(concurrency={"per_rack": 9, "per_pool": 9, "per_sku": 9}),
        [*fleet(40, racks=1), *(prop(f"n{i}", 10 + i, place("r0"), signal="xid.45") for i in range(6))],
    ),
    "proposal_age": lambda: (
        policy(),
        [
            *fleet(),
            prop("n0", 10, place("r0")),
            prop("n1", 10, place("r1")),
            prop("n2", 20, place("r2")),
            prop("n0", 1900, place("r0"), to=H, from_state=Q),
            prop("n2", 1930, place("r2"), to=S, id="n2:withdraw", trigger=EXPIRED, action=ActionKind.NONE),
        ],
    ),
}


def run(case: Case) -> list[Decision]:
    pol, inputs = case
    g, s = Guard(pol), GuardState()
    return [d for item in inputs for d in g.step(s, item)]


def test_every_guardrail_has_a_case_and_the_guard_writes_no_other() -> None:
    assert sorted(CASES) == sorted(GUARDRAILS)
    written = {c.name for name in CASES for d in run(CASES[name]()) for c in d.guard}
    assert written <= set(GUARDRAILS), f"the guard writes unregistered checks: {written - set(GUARDRAILS)}"


def test_baseline_nothing_wrong_executes_with_every_check_passed() -> None:
    (d,) = run((policy(), [*fleet(), prop("n0", 10)]))
    assert d.executable and d.guard and all(c.passed for c in d.guard), d.guard


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_refusing_guardrail_never_executes_and_explains_itself(name: str) -> None:
    last = run(CASES[name]())[-1]
    refused = [c for c in last.guard if c.name == name]
    assert refused and not refused[0].passed, f"{name} did not refuse: {last.guard}"
    assert refused[0].figures, f"{name} refused without the figures it judged"
    assert not last.executable


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic(name: str) -> None:
    """Replay and the live stream must reach the same decisions from the same inputs."""
    first = [d.model_dump(mode="json") for d in run(CASES[name]())]
    assert first == [d.model_dump(mode="json") for d in run(CASES[name]())]
