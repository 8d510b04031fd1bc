"""Read-back of every lever that can be set (kill switches, modes, exclusions, emergency, decision
approvals, breaker resets): the latest message per ``kind:scope``.

Two sources: the store's ``control`` table (what the sink recorded from the compacted control topic,
with each lever's offset there, so levers set by any API replica or before a restart; the sink
records only levers the API signed, the rest are dead letters), and the levers
this API process published itself, with the offset the broker acknowledged (the sink writes them a
moment later, and a read-back right after a set must already show it). The latest by position in
the topic wins (one key is one partition), never by the time a message claims: a lever dated in the
future cannot pin the view. Only rows recorded before the store kept offsets (offset -1) fall back
to their time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.control import ControlMessage
from store.base import Store

_LATEST = """
SELECT key, argMax(kind, (log_offset, time)) AS kind, argMax(scope, (log_offset, time)) AS scope,
       argMax(value, (log_offset, time)) AS value, argMax(actor, (log_offset, time)) AS actor,
       argMax(reason, (log_offset, time)) AS reason, argMax(time, (log_offset, time)) AS at,
       max(log_offset) AS position
FROM $db.control FINAL GROUP BY key ORDER BY key"""


class LeverBook:
    """``store`` None (a reader that is not store-backed): only this process's levers."""

    def __init__(self, store: Store | None, lock: threading.Lock) -> None:
        self.store, self.lock = store, lock
        self._mine: dict[str, dict[str, Any]] = {}
        self._mine_lock = threading.Lock()

    def published(self, msg: ControlMessage, offset: int | None) -> None:
        """A lever this process published; ``offset``: where the broker acknowledged it."""
        with self._mine_lock:
            self._mine[msg.key] = {
                "offset": -1 if offset is None else offset,
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
        offsets: dict[str, int] = {}
        for r in rows:
            at = r.pop("at")
            offsets[r["key"]] = int(r.pop("position"))
            found[r["key"]] = {**r, "value": orjson.loads(r["value"] or "{}"), "time": _aware(at)}
        with self._mine_lock:
            for key, mine in self._mine.items():
                held = found.get(key)
                if held is None or _newer(mine, offsets[key], held["time"]):
                    found[key] = {k: v for k, v in mine.items() if k != "offset"} | {
                        "time": _aware(mine["time"])
                    }
        out = [found[k] for k in sorted(found)]
        return [r for r in out if not kind or r["kind"] == kind]


def _newer(mine: dict[str, Any], stored_offset: int, stored_time: datetime) -> bool:
    """Whether this process's lever is later than the store's: by offset when both are known."""
    if mine["offset"] >= 0 and stored_offset >= 0:
        return bool(mine["offset"] >= stored_offset)
    return _aware(mine["time"]) >= stored_time


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)
