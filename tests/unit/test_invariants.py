"""Safety invariants: a clean log passes, and each invariant catches a log built to break it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy.invariants import Violation, check, placements_from_events
from schemas.common import NodeState
from schemas.control import ControlKind, ControlMessage
from schemas.decision import ActionKind, Decision, Mode
from schemas.events import Envelope
from schemas.parse import parse_event
from schemas.proposal import Placement

H, S, Q, R, V, E = (
    NodeState.HEALTHY,
    NodeState.SUSPECT,
    NodeState.QUARANTINED,
    NodeState.REPAIRING,
    NodeState.VALIDATING,
    NodeState.ESCALATED,
)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
# Two racks of two 8-GPU nodes in pool "p" (32 GPUs); pool "small" has one node.
FLEET = {
    "a1": Placement(pool="p", rack="ra", sku="H100", gpus=8),
    "a2": Placement(pool="p", rack="ra", sku="H100", gpus=8),
    "b1": Placement(pool="p", rack="rb", sku="H100", gpus=8),
    "b2": Placement(pool="p", rack="rb", sku="H100", gpus=8),
    "s1": Placement(pool="small", rack="rs", sku="H100", gpus=8),
}


def _d(n: int, node: str, frm: NodeState, to: NodeState, **kw: Any) -> Decision:
    base: dict[str, Any] = {
        "id": f"d{n}", "time": T0 + timedelta(minutes=n), "node": node, "from_state": frm, "to_state": to,
        "trigger": "t", "failure_class": "gpu_hardware", "confidence": 0.9, "action": ActionKind.GPU_RESET,
        "mode": Mode.AUTO, "executable": True, "reasons": [], "evidence": [], "policy_version": "v",
    }  # fmt: skip
    return Decision(**(base | kw))


def _ctl(n: int, kind: ControlKind, scope: str = "global", on: bool = True) -> ControlMessage:
    return ControlMessage(
        id=f"c{n}", time=T0 + timedelta(minutes=n), kind=kind, scope=scope, value={"on": on}, actor="op"
    )


def _names(log: list[Any], others: tuple[str, ...] = (), min_healthy: float = 0.5) -> list[str]:
    return [v.invariant for v in check(log, FLEET, lambda pool: min_healthy, 1, others)]


def test_a_full_repair_cycle_within_every_limit_is_clean() -> None:
    log = [
        _d(1, "a1", H, Q),
        _d(2, "b1", H, Q),  # another rack: allowed
        _d(3, "a1", Q, R),
        _d(4, "a1", R, V),
        _d(5, "a1", V, H, action=ActionKind.RETURN_TO_SERVICE),
        _d(6, "a2", H, Q),  # the rack's slot is free again
    ]
    assert check(log, FLEET, lambda pool: 0.5) == []


def test_headroom_a_quarantine_that_leaves_the_pool_below_its_minimum() -> None:
    log = [_d(1, "a1", H, Q), _d(2, "b1", H, Q)]  # 16 of 32 GPUs left: fine at 0.5, not at 0.6
    assert _names(log, min_healthy=0.5) == []
    assert _names(log, min_healthy=0.6) == ["headroom"]


def test_headroom_counts_nodes_someone_else_holds() -> None:
    assert _names([_d(1, "a1", H, Q)], others=("b1", "b2")) == ["headroom"]


def test_rack_concurrency_two_in_flight_in_one_rack_unless_emergency() -> None:
    log: list[Any] = [_d(1, "a1", H, Q), _d(2, "a2", H, Q)]
    assert _names(log) == ["rack_concurrency"]
    emergency = [_ctl(0, ControlKind.EMERGENCY), *log]
    assert _names(emergency) == []
    ended = [_ctl(0, ControlKind.EMERGENCY), _d(1, "a1", H, Q), _ctl(2, ControlKind.EMERGENCY, on=False)]
    assert _names([*ended, _d(3, "a2", H, Q)]) == ["rack_concurrency"]


def test_held_decisions_and_tenant_reports_do_not_take_a_slot_or_break_one() -> None:
    held = _d(2, "a2", H, H, held=True, executable=False)
    assert _names([_d(1, "a1", H, Q), held]) == []
    tenant = _d(2, "a2", H, Q, failure_class="tenant_report")
    assert _names([_d(1, "a1", H, Q), tenant]) == []


def test_killswitch_an_executable_decision_while_it_is_on() -> None:
    on = _ctl(0, ControlKind.KILLSWITCH)
    assert _names([on, _d(1, "a1", H, Q)]) == ["killswitch"]
    assert _names([on, _d(1, "a1", H, Q, executable=False)]) == []
    pool_on = _ctl(0, ControlKind.KILLSWITCH, scope="pool:p")
    assert _names([pool_on, _d(1, "a1", H, Q)]) == ["killswitch"]
    assert _names([pool_on, _d(1, "s1", H, Q)], min_healthy=0) == []  # another pool's switch
    off = _ctl(1, ControlKind.KILLSWITCH, on=False)
    assert _names([on, off, _d(2, "a1", H, Q)]) == []


def test_unowned_lift_returning_a_node_the_product_never_held() -> None:
    # The log never quarantined b1: a decision lifting it lifts somebody else's hold.
    assert _names([_d(1, "b1", V, H, action=ActionKind.RETURN_TO_SERVICE)]) == ["unowned_lift"]
    # An operator's hold on a1 at the start, lifted by the product.
    assert _names([_d(1, "a1", E, H)], others=("a1",)) == ["unowned_lift"]
    # Lifting our own hold twice: the second lift is of a hold we no longer own.
    ours = [_d(1, "a1", H, Q), _d(2, "a1", Q, H), _d(3, "a1", Q, H)]
    assert _names(ours) == ["unowned_lift"]


def test_replayed_or_stale_decisions_never_execute() -> None:
    assert _names([_d(1, "a1", H, S, replay=True)]) == ["replay_or_stale_executable"]
    assert _names([_d(1, "a1", H, S, stale=True)]) == ["replay_or_stale_executable"]
    assert _names([_d(1, "a1", H, S, stale=True, executable=False)]) == []


def test_a_violation_names_the_decision_and_node() -> None:
    (v,) = check([_d(7, "a1", H, Q), _d(8, "a2", H, Q)], FLEET, lambda pool: 0.0)
    assert v == Violation("rack_concurrency", "d8", "a2", "2 in flight in rack ra")
    assert str(v).startswith("rack_concurrency: d8 on a2")


@pytest.mark.parametrize("gpus", [4, 8])
def test_placements_come_from_the_latest_inventory(gpus: int) -> None:
    raw = [
        b'{"id":"i1","type":"node.inventory","source":"t","time":"2025-01-01T00:00:00Z","node":"n",'
        b'"data":{"pool":"p","rack":"r","sku":"H100","gpus":8}}',
        b'{"id":"i2","type":"node.inventory","source":"t","time":"2025-01-01T00:01:00Z","node":"n",'
        b'"data":{"pool":"p","rack":"r2","sku":"H100","gpus":%d}}' % gpus,
    ]
    events = [e for e in (parse_event(r) for r in raw) if isinstance(e, Envelope)]
    assert placements_from_events(events) == {"n": Placement(pool="p", rack="r2", sku="H100", gpus=gpus)}


def test_the_module_docstring_example_runs() -> None:
    import doctest

    import policy.invariants

    result = doctest.testmod(policy.invariants)
    assert result.attempted > 0 and result.failed == 0
