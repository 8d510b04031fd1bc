"""Bearer tokens: where they come from (a YAML/JSON file or an env var) and who each one is.

The file maps token -> {actor, role}. Tokens are compared by their SHA-256 so the table kept in
memory is not a list of usable secrets, and lookups take the same time whatever the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from breakfix.api.roles import ROLES, initiator_of

ENV_FILE = "BREAKFIX_API_TOKENS_FILE"
ENV_JSON = "BREAKFIX_API_TOKENS"


@dataclass(frozen=True)
class Principal:
    actor: str
    role: str

    @property
    def initiator(self) -> str:
        return initiator_of(self.role)


class TokenError(ValueError):
    """A token table that does not parse; the message names the offending entry."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MIN_TOKEN_CHARS = 24
"""``secrets.token_urlsafe(32)`` gives 43 characters; anything under 24 is guessable or a placeholder."""
EXAMPLE_MARKS = ("change-me", "changeme", "example", "replace-me")
"""Words of the placeholders shipped in ``deploy/api/tokens.yaml`` and of their usual imitations."""
GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def weakness(token: str) -> str | None:
    """Why ``token`` must not guard a production API (an example or short value), or None."""
    lowered = token.lower()
    mark = next((m for m in EXAMPLE_MARKS if m in lowered), None)
    if mark is not None:
        return f"it contains {mark!r}, as the shipped examples do"
    if len(token) < MIN_TOKEN_CHARS:
        return f"it has {len(token)} characters (at least {MIN_TOKEN_CHARS})"
    return None


class TokenTable:
    def __init__(self, entries: dict[str, Principal]) -> None:
        self._by_digest = {_digest(t): p for t, p in entries.items()}
        self.weak = [f"the token of {p.actor} ({p.role}): {why}" for t, p in entries.items()
                     if (why := weakness(t)) is not None]  # fmt: skip
        """Entries ``breakfix serve`` refuses to start with (it names the actor, never the token)."""

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, token: str) -> Principal | None:
        d = _digest(token)
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, d):
                return principal
        return None


def parse_tokens(raw: Any, origin: str) -> TokenTable:
    if not isinstance(raw, dict):
        raise TokenError(f"{origin}: expected a mapping token -> {{actor, role}}")
    entries: dict[str, Principal] = {}
    for token, who in raw.items():
        if not isinstance(who, dict) or not who.get("actor") or who.get("role") not in ROLES:
            raise TokenError(
                f"{origin}: entry {str(token)[:6]}...: needs actor and role (one of {', '.join(ROLES)})"
            )
        entries[str(token)] = Principal(str(who["actor"]), str(who["role"]))
    return TokenTable(entries)


def load_tokens(path: str | Path | None = None) -> TokenTable:
    """From ``path``, else ``$BREAKFIX_API_TOKENS_FILE``, else ``$BREAKFIX_API_TOKENS`` (JSON)."""
    file = path or os.environ.get(ENV_FILE)
    if file:
        p = Path(file)
        try:
            return parse_tokens(yaml.safe_load(p.read_text()), str(p))
        except yaml.YAMLError as err:
            raise TokenError(f"{p}: not valid YAML/JSON: {err}") from None
    text = os.environ.get(ENV_JSON)
    if text:
        try:
            return parse_tokens(json.loads(text), ENV_JSON)
        except json.JSONDecodeError as err:
            raise TokenError(f"{ENV_JSON}: not valid JSON: {err}") from None
    raise TokenError(f"no API tokens: pass --tokens FILE or set {ENV_FILE} or {ENV_JSON}")
