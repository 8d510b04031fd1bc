"""Approval tokens: random secrets bound to one plan id and one content hash, single use, expiring.

Only the token's SHA-256 is kept. :meth:`TokenBook.redeem` refuses, each with its own error so the
API can answer the right status: an unknown token or one issued for another plan
(:class:`TokenInvalid`, 403), an expired one (:class:`TokenExpired`, 410), one already used
(:class:`TokenUsed`, 409), and one whose plan content changed since it was approved (403).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


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
    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, plan_id: str, content_hash: str, approver: str, now: datetime) -> tuple[str, Grant]:
        token = "bfa_" + secrets.token_urlsafe(32)
        grant = Grant(plan_id, content_hash, approver, now + self.ttl)
        with self._lock:
            self._grants[_digest(token)] = grant
        return token, grant

    def redeem(self, token: str, plan_id: str, content_hash: str, now: datetime) -> Grant:
        """Check and spend ``token`` for this plan in one step (two racing executions: one wins)."""
        key = _digest(token)
        with self._lock:
            grant = self._grants.get(key)
            if grant is None:
                raise TokenInvalid("approval token unknown: ask an approver for a token for this plan")
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
            self._grants[key] = replace(grant, used=True)
            return grant

    def spend_plan(self, plan_id: str) -> None:
        """Void every other token of an executed plan."""
        with self._lock:
            for k, g in self._grants.items():
                if g.plan_id == plan_id:
                    self._grants[k] = replace(g, used=True)
