"""Approval tokens: random secrets bound to one plan id and one content hash, single use, expiring.

Only the token's SHA-256 is kept, in the API's sqlite state file. :meth:`TokenBook.redeem`
refuses, each with its own error so the API can answer the right status: an unknown token or one
issued for another plan (:class:`TokenInvalid`, 403), an expired one (:class:`TokenExpired`, 410),
one already used (:class:`TokenUsed`, 409), and one whose plan content changed since it was approved (403).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from breakfix.api.statedb import StateDb


class TokenRefused(Exception):
    status = 403


class TokenInvalid(TokenRefused):
    status = 403


class TokenExpired(TokenRefused):
    status = 410


class TokenUsed(TokenRefused):
    status = 409


@dataclass(frozen=True)
class Grant:
    plan_id: str
    content_hash: str
    approver: str
    expires_at: datetime
    used: bool = False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """Grants kept in the API's state file (:mod:`breakfix.api.statedb`): a token used before a
    restart stays used after it, and one issued before it still redeems (once) until it expires."""

    def __init__(self, ttl: timedelta, db: StateDb | None = None) -> None:
        self.ttl = ttl
        self.db = db or StateDb()

    def issue(self, plan_id: str, content_hash: str, approver: str, now: datetime) -> tuple[str, Grant]:
        token = "bfa_" + secrets.token_urlsafe(32)
        grant = Grant(plan_id, content_hash, approver, now + self.ttl)
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO grants (digest, plan_id, content_hash, approver, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (_digest(token), plan_id, content_hash, approver, grant.expires_at.isoformat()),
            )
        return token, grant

    def redeem(self, token: str, plan_id: str, content_hash: str, now: datetime) -> Grant:
        """Check and spend ``token`` for this plan in one transaction (two racing executions, in
        one process or two: one wins); a refusal spends nothing."""
        key = _digest(token)
        with self.db.transaction() as tx:
            row = tx.execute(
                "SELECT plan_id, content_hash, approver, expires_at, used FROM grants WHERE digest=?", (key,)
            ).fetchone()
            if row is None:
                raise TokenInvalid("approval token unknown: ask an approver for a token for this plan")
            grant = Grant(row[0], row[1], row[2], datetime.fromisoformat(row[3]), bool(row[4]))
            if grant.plan_id != plan_id:
                raise TokenInvalid(f"approval token was issued for plan {grant.plan_id}, not {plan_id}")
            if grant.used:
                raise TokenUsed("approval token already used: tokens are single use; ask for a new approval")
            if now >= grant.expires_at:
                raise TokenExpired(
                    f"approval token expired at {grant.expires_at.isoformat()}; ask for a new approval"
                )
            if grant.content_hash != content_hash:
                raise TokenInvalid("plan content changed since approval: the token no longer matches")
            tx.execute("UPDATE grants SET used=1 WHERE digest=?", (key,))
            return replace(grant, used=True)

    def spend_plan(self, plan_id: str) -> None:
        """Void every other token of an executed plan."""
        with self.db.transaction() as tx:
            tx.execute("UPDATE grants SET used=1 WHERE plan_id=?", (plan_id,))
