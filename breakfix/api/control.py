"""The control levers as the API sees them: published to the compacted control topic, and mirrored
in memory so ``GET /killswitch`` and the workflows this API runs obey them at once. The mirror also
follows the topic (:mod:`breakfix.api.follower`), so levers set by another process reach it too.

:class:`ControlState` is also the workflow engine's :class:`~actuators.base.Safety`: a plan started
here re-checks the same kill switch before every mutating step.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

from breakfix.api.ports import Publisher
from breakfix.api.tokens import Principal
from schemas.control import ControlKind, ControlMessage


class ControlState:
    def __init__(self, excluded_pools: frozenset[str] = frozenset()) -> None:
        self._lock = threading.Lock()
        self.global_kill = False
        self.pools: dict[str, bool] = {}
        self.excluded_pools = excluded_pools
        self.node_pools: dict[str, str] = {}
        self._times: dict[str, datetime] = {}

    def apply(self, msg: ControlMessage) -> None:
        if msg.kind is ControlKind.KILLSWITCH:
            self._set(msg.scope, bool(msg.value.get("on")), msg.time)

    def seed(self, levers: dict[str, tuple[bool, datetime]]) -> None:
        """Start from recorded kill switches (scope -> (on, time)), e.g. after a restart."""
        for scope, (on, at) in levers.items():
            self._set(scope, on, at)

    def _set(self, scope: str, on: bool, at: datetime) -> None:
        """Latest lever per scope wins, by its time (as the store's ``argMax(value, time)``): the
        API's own lever comes back from the topic after it was applied, and an older message read
        late must not undo a newer one."""
        with self._lock:
            held = self._times.get(scope)
            if held is not None and at < held:
                return
            self._times[scope] = at
            if scope == "global":
                self.global_kill = on
            elif scope.startswith("pool:"):
                self.pools[scope.removeprefix("pool:")] = on

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"global": self.global_kill, "pools": dict(self.pools)}

    # Safety protocol ---------------------------------------------------------------------------
    def killswitch_on(self, pool: str | None) -> bool:
        with self._lock:
            return self.global_kill or (pool is not None and self.pools.get(pool, False))

    def excluded(self, node: str) -> bool:
        return self.node_pools.get(node, "") in self.excluded_pools


class ControlPublisher:
    """Builds :class:`ControlMessage` records, publishes them keyed by ``kind:scope``, mirrors them."""

    def __init__(self, publisher: Publisher, topic: str, state: ControlState) -> None:
        self.publisher, self.topic, self.state = publisher, topic, state

    def send(
        self,
        kind: ControlKind,
        scope: str,
        value: dict[str, Any],
        who: Principal,
        reason: str,
        now: datetime,
    ) -> ControlMessage:
        msg = ControlMessage(
            id=f"ctl-{uuid.uuid4().hex}",
            time=now,
            kind=kind,
            scope=scope,
            value=value,
            actor=who.actor,
            role=who.role,
            reason=reason,
        )
        self.publisher.publish(self.topic, msg.key, msg.model_dump_json().encode())
        self.state.apply(msg)
        return msg
