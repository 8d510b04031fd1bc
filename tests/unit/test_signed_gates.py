"""Property: a forged message on any topic that can lead to an action never passes its gate.

For each gate the product runs (the actuator stage's decision admission, the node agent's command
admission, the controller's answer check, the node stage's lifecycle and decision check, the guard's
check of an operator plan's step), Hypothesis takes a genuine signed message and forges it: the seal
dropped, a signed field changed to any JSON value, re-signed by a key the verifier does not trust or by
a trusted key of another role, the stamp moved in time, the signature bytes altered. None passes; the
genuine message does (so the property is not vacuous).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from actuators.nodeagent.kafka_transport import answer_of
from agents.nodeagent import NodeAgent, SimulatedGpuOps
from agents.nodeagent.loop import AgentKeys
from agents.nodeagent.loop import admit as admit_command
from schemas.deadletter import DeadLetter
from schemas.parse import parse_event
from schemas.signing import ROLES, Keyring, Signer
from streams.actuation.admission import DecisionJournal
from streams.actuation.admission import admit as admit_decision
from streams.signed_input import SignedInput, read_operator
from tests.integration.test_actuator_stage import decision

KEYS = {role: Signer.generate(f"{role}-k", role) for role in ROLES}
RING = Keyring.parse("".join(k.trust_line() for k in KEYS.values()))
NOW = time.time()
AGENT = NodeAgent("n1", SimulatedGpuOps(gpus=8), Path("/nonexistent"))

Gate = Callable[[bytes], bool]
"""True when the gate lets the message act."""


def decision_gate(raw: bytes) -> bool:
    return admit_decision(raw, RING, DecisionJournal(None), NOW, 900).decision is not None


def command_gate(raw: bytes) -> bool:
    got = admit_command(raw, AGENT, AgentKeys(KEYS["agent"], RING), NOW)
    return got is not None and not isinstance(got, DeadLetter)


def answer_gate(raw: bytes) -> bool:
    return answer_of(raw, {"d-1/diag": "n1"}, RING, NOW)[0] is not None


def lifecycle_gate(raw: bytes) -> bool:
    event = parse_event(raw)
    return not isinstance(event, DeadLetter) and SignedInput(RING).event(event, raw, "t") is None


def node_decision_gate(raw: bytes) -> bool:
    return SignedInput(RING).decision(raw, "n1", "t") is None


def operator_gate(raw: bytes) -> bool:
    return not isinstance(read_operator(raw, RING, "t", NOW), DeadLetter)


def _event(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "e-1",
        "type": type_,
        "source": "x",
        "time": datetime.now(UTC).isoformat(),
        "node": "n1",
        "data": data,
    }


REPORT = {"instance_id": "i", "category": "HARDWARE", "summary": "s"}
COMMAND = {
    "id": "d-1/reboot", "decision_id": "d-1", "node": "n1", "action": "reboot", "playbook": "p",
    "playbook_version": "1", "step": "s", "time": datetime.now(UTC).isoformat(),
}  # fmt: skip
ANSWER = _event("action.result", {"decision_id": "d-1", "action": "dcgm_diag", "status": "succeeded",
                                  "validation": "passed", "request_id": "d-1/diag"})  # fmt: skip
OPERATOR_STEP = {
    "id": "wf-1.n1", "time": datetime.now(UTC).isoformat(), "node": "n1", "failure_class": "gpu_hardware",
    "action": "reboot", "playbook": "gpu-reboot", "plan_id": "plan-1", "workflow_id": "wf-1",
    "requested_by": "olga", "approvers": [{"actor": "ann", "role": "approver"}],
    "placement": {"pool": "p1", "rack": "r1", "sku": "H100", "gpus": 8},
}  # fmt: skip
CASES: dict[str, tuple[Gate, str, dict[str, Any]]] = {
    "decision": (decision_gate, "guard", decision("n1").model_dump(mode="json")),
    "node-stage decision": (node_decision_gate, "guard", decision("n1").model_dump(mode="json")),
    "command": (command_gate, "actuators", COMMAND),
    "answer": (answer_gate, "agent", ANSWER),
    "tenant.report": (lifecycle_gate, "api", _event("tenant.report", REPORT)),
    "repair.status": (lifecycle_gate, "controller", _event("repair.status", {"repair_status": "Completed"})),
    "action.result": (lifecycle_gate, "actuators", ANSWER),
    "operator plan": (operator_gate, "api", OPERATOR_STEP),
}  # fmt: skip

ACCEPTED = {
    "tenant.report": {"api", "controller"},  # the API, or NICo's poll (docs/operate/nico.md)
    "repair.status": {"api", "controller"},
    "action.result": {"actuators", "agent"},  # the API runs no workflow: its key is refused here
}
"""Gates that accept more than one role (streams/signed_input.py); the others accept only their own."""

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=6,
)


@st.composite
def forgeries(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(CASES)))
    _, role, doc = CASES[name]
    signed = KEYS[role].seal(doc, NOW, epoch=1)
    how = draw(st.sampled_from(["unsigned", "field", "untrusted", "other-role", "time", "sig"]))
    if how == "unsigned":
        forged = doc
    elif how == "field":
        field = draw(st.sampled_from(sorted(doc)))
        value = draw(json_values.filter(lambda v: orjson.dumps(v) != orjson.dumps(doc[field])))
        forged = {**signed, field: value}
    elif how == "untrusted":
        forged = Signer.generate(KEYS[role].key_id, role).seal(doc, NOW, epoch=1)
    elif how == "other-role":
        other = draw(st.sampled_from([r for r in ROLES if r not in ACCEPTED.get(name, {role})]))
        forged = KEYS[other].seal(doc, NOW, epoch=1)
    elif how == "time":
        shift = draw(st.sampled_from([-7 * 86_400.0, 3_600.0]))
        if name in ("answer", "tenant.report", "repair.status", "action.result", "node-stage decision"):
            shift = 3_600.0  # these gates bound only the future (event time rules the past)
        forged = KEYS[role].seal(doc, NOW + shift, epoch=1)
    else:
        sig = bytearray(base64.b64decode(signed["seal"]["sig"]))
        sig[draw(st.integers(0, len(sig) - 1))] ^= 1 << draw(st.integers(0, 7))
        forged = {**signed, "seal": {**signed["seal"], "sig": base64.b64encode(bytes(sig)).decode()}}
    return name, orjson.dumps(forged)


def test_every_genuine_message_passes_its_gate() -> None:
    for name, (gate, role, doc) in CASES.items():
        assert gate(orjson.dumps(KEYS[role].seal(doc, NOW, epoch=1))), name


@settings(max_examples=150, deadline=None)
@given(forgeries())
def test_no_forged_message_passes_any_gate(case: tuple[str, bytes]) -> None:
    name, raw = case
    assert not CASES[name][0](raw), f"a forged {name} passed"
