"""Which node-stage input must be signed, and by whom: lifecycle events and decisions.

Telemetry stays unsigned by design: it can only make the node stage propose, and the guard decides.
What changes a node's lifecycle without the guard must come from its signed origin: a tenant report
from the API; a repair status from the API or an external repair controller's client (``controller``);
an action result from the actuator stage, a node agent or the API (which runs operator plans); a
decision from the guard. Anything else
of those types is a dead letter with its signature reason, counted like every other.

Replay-marked input is let through unsigned: recordings carry tenants' reports as they happened, and
whatever a replay leads to is marked replay and never executes.
"""

from __future__ import annotations

import time

import orjson

from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import Envelope
from schemas.parse import dead_letter
from schemas.signing import Keyring, verify

SIGNERS: dict[str, frozenset[str]] = {
    "tenant.report": frozenset({"api"}),
    "repair.status": frozenset({"api", "controller"}),
    "action.result": frozenset({"actuators", "agent", "api"}),
}


class SignedInput:
    """The node stage's check of lifecycle events and decisions (``keyring``: the trusted keys)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def event(self, event: Envelope, raw: bytes, source: str) -> DeadLetter | None:
        """None when ``event`` may be applied; its dead letter otherwise."""
        roles = SIGNERS.get(str(getattr(event, "type", "")))
        if roles is None or event.replay:
            return None
        return self._check(raw, roles, event.node, source, str(getattr(event, "type", "")))

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
