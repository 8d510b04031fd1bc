"""Which input must be signed, and by whom: lifecycle events, decisions, and levers.

Telemetry stays unsigned by design: it can only make the node stage propose, and the guard decides.
What changes a node's lifecycle without the guard must come from its signed origin: a tenant report
from the API or the product's client for an external controller (``controller``, NICo's poll); a
repair status from the API or an external repair controller's client (``controller``); an action
result from the actuator stage or a node agent (the API runs no workflow); a decision from the guard.
Anything else of those types is a dead letter with its signature reason, counted like every other.

Levers (``breakfix.control``: kill switch, modes, emergency, breaker reset, approvals, exclusions) have
one writer, the API, which signs them; the guard, the actuator stage and the API's own follower apply
only those (:func:`read_lever`). A lever is state, so it has no age bound, but a future-dated one is
refused: it could otherwise pin a reader's view.

An operator repair plan's step for one node (``breakfix.proposals``, kind ``operator``) has one
writer too, the API, which signs it once the plan's approvals are verified; the guard judges only
those (:func:`read_operator`), and only while fresh: a guard rebuilding its state from the topic's
retained records must not run an old plan again.

Replay-marked lifecycle input is signed too on the live path: ``breakfix replay --into-kafka`` seals
what it republishes with the ``replay`` key, whose seal counts only on replay-marked input (the marker
is inside the signature, and whatever a replay leads to is marked replay and never executes). An
unsigned one is a dead letter of its own reason (``unsigned_replay``): the marker alone was a way to
slip a forged tenant report or repair status past the check. Offline replay reads recordings
directly and never passes through this check.
"""

from __future__ import annotations

import time
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from schemas.control import ControlMessage
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import Envelope
from schemas.parse import dead_letter
from schemas.proposal import OperatorProposal
from schemas.signing import SEAL, Keyring, verify

M = TypeVar("M", bound=BaseModel)

SIGNERS: dict[str, frozenset[str]] = {
    # A tenant's release reaches the pipeline through the API or, where NICo is the controller, through
    # `breakfix nico poll`: the product's own client for that external controller (docs/operate/nico.md).
    "tenant.report": frozenset({"api", "controller"}),
    "repair.status": frozenset({"api", "controller"}),
    # The actuator stage (every workflow, operator plans' included: the API runs none) or an agent.
    "action.result": frozenset({"actuators", "agent"}),
}

REPLAY_SIGNER = "replay"
"""The role of ``breakfix replay --into-kafka``: it may sign replay-marked lifecycle input only."""


class SignedInput:
    """The node stage's check of lifecycle events and decisions (``keyring``: the trusted keys)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def event(self, event: Envelope, raw: bytes, source: str) -> DeadLetter | None:
        """None when ``event`` may be applied; its dead letter otherwise."""
        kind = str(getattr(event, "type", ""))
        roles = SIGNERS.get(kind)
        if roles is None:
            return None
        if not event.replay:
            return self._check(raw, roles, event.node, source, kind)
        letter = self._check(raw, roles | {REPLAY_SIGNER}, event.node, source, f"replay-marked {kind}")
        if letter is not None and letter.reason is DeadLetterReason.UNSIGNED:
            return letter.model_copy(update={"reason": DeadLetterReason.UNSIGNED_REPLAY})
        return letter

    def decision(self, raw: bytes, node: str, source: str) -> DeadLetter | None:
        return self._check(raw, frozenset({"guard"}), node, source, "decision")

    def _check(
        self, raw: bytes, roles: frozenset[str], node: str | None, source: str, what: str
    ) -> DeadLetter | None:
        verdict = verify(orjson.loads(raw), self.keyring, roles, time.time(), None, node)
        if verdict.ok:
            return None
        return dead_letter(
            raw, DeadLetterReason(str(verdict.reason)), f"{what} refused: {verdict.detail}", source
        )


def _read_api_signed(
    raw: bytes,
    keyring: Keyring,
    source: str,
    what: str,
    model: type[M],
    now: float | None,
    max_age_s: float | None,
) -> M | DeadLetter:
    """``model`` in ``raw`` when the API signed it (within ``max_age_s`` when given); its dead letter,
    named for ``what``, otherwise."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return dead_letter(raw, DeadLetterReason.MALFORMED_JSON, f"{what}: not JSON: {err}", source)
    if not isinstance(doc, dict):
        return dead_letter(raw, DeadLetterReason.INVALID_VALUE, f"{what}: not an object", source)
    verdict = verify(doc, keyring, {"api"}, time.time() if now is None else now, max_age_s)
    if not verdict.ok:
        return dead_letter(
            raw, DeadLetterReason(str(verdict.reason)), f"{what} refused: {verdict.detail}", source
        )
    try:
        return model.model_validate({k: v for k, v in doc.items() if k != SEAL})
    except ValidationError as err:
        return dead_letter(raw, DeadLetterReason.INVALID_VALUE, f"{what}: {str(err).splitlines()[0]}", source)


def read_lever(
    raw: bytes, keyring: Keyring, source: str, now: float | None = None
) -> ControlMessage | DeadLetter:
    """The lever in ``raw`` when the API signed it; its dead letter otherwise."""
    return _read_api_signed(raw, keyring, source, "lever", ControlMessage, now, None)


OPERATOR_MAX_AGE_S = 900.0
"""How long after the API signed it an operator plan's step may still be judged (the decision's own
freshness bound at the actuator stage is of the same order)."""


def read_operator(
    raw: bytes, keyring: Keyring, source: str, now: float | None = None
) -> OperatorProposal | DeadLetter:
    """The operator plan step in ``raw`` when the API signed it recently; its dead letter otherwise."""
    return _read_api_signed(
        raw, keyring, source, "operator plan", OperatorProposal, now, OPERATOR_MAX_AGE_S
    )
