"""Sealing test messages with the session's keys (tests/conftest.py ``signing_keys``), as the real
signer of each message would: the guard for decisions, the API for levers, an agent for answers."""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel

from streams.keys import load_signer
from streams.settings import StreamSettings

EPOCH = 1 << 60
"""The epoch test decisions carry by default: one guard for the whole test, newer than any real guard a
test started before (their epochs are takeover times in ms), so the actuator stage never fences them."""


def sealed(
    doc: BaseModel | dict[str, Any], role: str = "guard", epoch: int = EPOCH, issued: float | None = None
) -> bytes:
    """``doc`` signed by the session's ``role`` key (``issued``: wall-clock seconds, default now)."""
    body = doc.model_dump(mode="json") if isinstance(doc, BaseModel) else orjson.loads(orjson.dumps(doc))
    signer = load_signer(StreamSettings(), role)
    return orjson.dumps(signer.seal(body, time.time() if issued is None else issued, epoch))
