"""The seams the API talks through. Real implementations live beside them (store reader, Kafka
publisher); tests inject the same real ones against Tansu and chdb, or small doubles where the real
thing cannot run here."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class StateReader(Protocol):
    """Read side of the audit store: node states, evidence, decisions, audit rows, ad-hoc SQL."""

    def nodes(self, pool: str = "", state: str = "", limit: int = 1000) -> list[dict[str, Any]]: ...

    def node(self, node: str, limit: int = 50) -> dict[str, Any] | None: ...

    def decisions(
        self, node: str = "", since: datetime | None = None, limit: int = 100
    ) -> list[dict[str, Any]]: ...

    def audit(
        self, since: datetime | None = None, actor: str = "", limit: int = 100
    ) -> list[dict[str, Any]]: ...

    def sql(self, query: str, limit: int = 1000) -> dict[str, Any]: ...

    def killswitches(self) -> dict[str, tuple[bool, datetime]]: ...

    def plan_runs(self, decision_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The guard's decisions of these ids and the action results answering them, oldest first."""
        ...


class Publisher(Protocol):
    """Writes one message to a topic, keyed; returns once the broker acknowledged it, with the offset
    it acknowledged (None where the publisher cannot tell)."""

    def publish(
        self, topic: str, key: str, value: bytes, headers: dict[str, bytes] | None = None
    ) -> int | None: ...

    def publish_sealed(
        self, topic: str, key: str, doc: dict[str, Any], headers: dict[str, bytes] | None = None
    ) -> int | None:
        """Publish ``doc`` under the API's signature (lifecycle inputs and operator plan steps:
        streams.signed_input)."""
        ...

    def close(self) -> None: ...
