"""Read-back of every lever that can be set (kill switches, modes, exclusions, emergency, decision
approvals, breaker resets): the latest message per ``kind:scope``.

Two sources, latest time wins: the store's ``control`` table (what the sink recorded from the
compacted control topic, so levers set by any API replica or before a restart), and the levers this
API process published itself (the sink writes them a moment later, and a read-back right after a
set must already show it).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.control import ControlMessage
from streams.store.base import Store

_LATEST = """
SELECT key, argMax(kind, time) AS kind, argMax(scope, time) AS scope, argMax(value, time) AS value,
       argMax(actor, time) AS actor, argMax(reason, time) AS reason, max(time) AS at
FROM $db.control FINAL GROUP BY key ORDER BY key"""


class LeverBook:
    """``store`` None (a reader that is not store-backed): only this process's levers."""

    def __init__(self, store: Store | None, lock: threading.Lock) -> None:
        self.store, self.lock = store, lock
        self._mine: dict[str, dict[str, Any]] = {}
        self._mine_lock = threading.Lock()

    def published(self, msg: ControlMessage) -> None:
        with self._mine_lock:
            self._mine[msg.key] = {
                "key": msg.key,
                "kind": msg.kind.value,
                "scope": msg.scope,
                "value": msg.value,
                "actor": msg.actor,
                "reason": msg.reason,
                "time": msg.time,
            }

    def latest(self, kind: str = "") -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if self.store is not None:
            with self.lock:
                rows = self.store.query(_LATEST.replace("$db", self.store.database)).dicts()
        found: dict[str, dict[str, Any]] = {}
        for r in rows:
            at = r.pop("at")
            found[r["key"]] = {**r, "value": orjson.loads(r["value"] or "{}"), "time": _aware(at)}
        with self._mine_lock:
            for key, mine in self._mine.items():
                held = found.get(key)
                if held is None or _aware(mine["time"]) >= held["time"]:
                    found[key] = {**mine, "time": _aware(mine["time"])}
        out = [found[k] for k in sorted(found)]
        return [r for r in out if not kind or r["kind"] == kind]


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)
