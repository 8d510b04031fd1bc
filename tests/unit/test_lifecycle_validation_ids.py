"""A Validating node takes only the validation of its own decision.

It used to take any ``validate`` result whatever its decision id, so an old run's answer, a replayed
one, or one anybody able to write the lifecycle topic crafted, passed or failed the node. Results are
built with the workflow engine's own ``action_result`` and parsed as the node stage parses them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from actuators.workflow.results import action_result
from policy.lifecycle import Life, apply, on_action_result
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from schemas.events import ActionResult
from schemas.parse import validate_event_dict
from tests.builders import T0

V, E = NodeState.VALIDATING, NodeState.ESCALATED


def _validating() -> Life:
    life = Life()
    d = Decision(
        id="dv", time=datetime.fromtimestamp(T0, UTC), node="n1", gpu=3, from_state=NodeState.REPAIRING,
        to_state=V, trigger="repair_completed", failure_class="gpu_memory", confidence=1.0,
        action=ActionKind.VALIDATE, mode=Mode.AUTO, executable=True, reasons=["test"], evidence=[], guard=[],
        policy_version="test",
    )  # fmt: skip
    apply(life, d, T0)
    return life


def _validation(decision_id: str, outcome: str) -> ActionResult:
    ev = validate_event_dict(
        action_result(decision_id=decision_id, node="n1", step="validate", action="validate",
                      status="succeeded", time=datetime.fromtimestamp(T0 + 10, UTC), validation=outcome)  # type: ignore[arg-type]
    )  # fmt: skip
    assert isinstance(ev, ActionResult)
    return ev


def test_a_validation_of_another_decision_neither_passes_nor_fails_the_node() -> None:
    life = _validating()
    assert on_action_result(life, _validation("d-old-run", "failed"), T0 + 10) is None
    assert on_action_result(life, _validation("d-forged", "passed"), T0 + 10) is None
    assert life.validated_at is None, "a foreign pass started the return to service"


def test_the_nodes_own_validation_still_decides() -> None:
    life = _validating()
    failed = on_action_result(life, _validation("dv", "failed"), T0 + 10)
    assert failed is not None and failed.to_state is E
    assert on_action_result(life, _validation("dv", "passed"), T0 + 20) is None
    assert life.validated_at == T0 + 20
