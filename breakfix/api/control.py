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
from policy.levers import Levers
from policy.levers import apply as apply_lever
from schemas.control import ControlKind, ControlMessage
from schemas.vocab import GLOBAL, Scope


class ControlState:
    """The API's mirror of the levers (:mod:`policy.levers`). The API sees its own messages before the
    topic brings them back, so it orders each lever by its position in the control topic (the offset
    the broker acknowledged for its own writes, the record's offset for what the follower reads): a
    message read late never undoes one written after it, whatever time either claims, so a
    future-dated lever cannot pin the view nor a back-dated one be ignored. Every message of a lever
    shares its key (``kind:scope``), hence its partition, so offsets order them. ``excluded_pools``
    are the policy's excluded pools, which hold whatever the levers say."""

    def __init__(self, excluded_pools: frozenset[str] = frozenset()) -> None:
        self._lock = threading.Lock()
        self.levers = Levers()
        self.excluded_pools = excluded_pools

    def apply(self, msg: ControlMessage, offset: int | None) -> None:
        """``offset``: the message's position in the control topic; None (a publisher that cannot
        tell, the store's seed) applies it unordered, and any message read from the topic later wins."""
        with self._lock:
            apply_lever(self.levers, msg, stamp=offset)

    def seed(self, levers: dict[str, tuple[bool, datetime]]) -> None:
        """Start from recorded kill switches (scope -> (on, time)), e.g. after a restart: the store's
        latest by log position (:meth:`StoreStateReader.killswitches`). A recorded switch fills only
        a scope the mirror holds nothing for, and holds only until the follower reads that lever
        from the topic."""
        for scope, (on, at) in levers.items():
            with self._lock:
                if scope in self.levers.killswitch:
                    continue
            self.apply(
                ControlMessage(
                    id=f"store:{scope}",
                    time=at,
                    kind=ControlKind.KILLSWITCH,
                    scope=scope,
                    value={"on": on},
                    actor="store",
                ),
                None,
            )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            switches = dict(self.levers.killswitch)
        pools = {Scope.parse(s).name: on for s, on in switches.items() if s != str(GLOBAL)}
        return {"global": switches.get(str(GLOBAL), False), "pools": pools}

    # Safety protocol ---------------------------------------------------------------------------
    def killswitch_on(self, pool: str | None) -> bool:
        with self._lock:
            return self.levers.killswitch_on(pool)

    def excluded(self, node: str, pool: str | None) -> bool:
        with self._lock:
            return self.levers.excluded(node, pool) or (pool is not None and pool in self.excluded_pools)


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
    ) -> tuple[ControlMessage, int | None]:
        """The lever published, and the offset the broker acknowledged for it."""
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
        offset = self.publisher.publish_sealed(self.topic, msg.key, msg.model_dump(mode="json"))
        self.state.apply(msg, offset)
        return msg, offset
