"""The ports the streaming runtime works through: what it needs of Kafka, Faust's tables and the clock.

:class:`streams.node_runtime.NodeRuntimeShell` and :class:`streams.guard_runtime.GuardRuntimeShell`
decide *when* to write, send and acknowledge; these protocols are *how*. ``streams.pipeline.faust_ports``
implements them over a Faust app and the broker; ``tests/fakes/stream_ports.py`` implements them in
memory, so the runtime's durability order (table write → flush → sends → acknowledge) is tested
without a broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Clock = Callable[[], float]
"""Monotonic wall-clock seconds: checkpoint intervals, watermark waits and the heap keeper's pauses.
Decisions never read it (they take time from events)."""

Writes = list[tuple[str, bytes]]
"""Table key → value, in write order."""


class InputMessage(Protocol):
    """One input record as the runtime reads it (Faust's ``Message`` has these attributes)."""

    topic: str
    partition: int
    offset: int
    value: bytes
    headers: Any
    tp: Any


class InputEvent(Protocol):
    """A delivered input record: acknowledged through :class:`Commit`, and the context of a table
    write (a write goes to the changelog partition of its context's input partition)."""

    message: Any


@dataclass(frozen=True)
class LogRecord:
    """A record read back from the log (not delivered through the stream: nothing to acknowledge)."""

    topic: str
    offset: int
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


class Outbound(Protocol):
    """Sends to output topics (named by their catalogue names, ``schemas.topics.Topic``)."""

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        partition: int | None = None,
        headers: dict[str, bytes] | None = None,
    ) -> Awaitable[Any]:
        """Hand a record to the producer; the returned awaitable completes when the broker has it."""
        ...

    async def flush(self) -> None:
        """Until every record and table write handed out so far is acknowledged by the broker."""
        ...


class StateTable(Protocol):
    """A changelogged key → bytes table (node records per partition, or the guard's snapshot)."""

    def items(self) -> list[tuple[str, Any]]: ...

    def get(self, key: str) -> Any: ...

    async def write(self, groups: list[tuple[Any, Writes]]) -> None:
        """Each group's writes in the partition of its context event, then one :meth:`Outbound.flush`:
        the batch ends there, so the last write of a group is alone in its changelog batch."""
        ...


class Commit(Protocol):
    """Acknowledging input: its offset becomes committable (once every earlier one is)."""

    async def ack(self, event: Any) -> None: ...


class InputLog(Protocol):
    """Reading the input topics beside the stream: their starts, their ends and skipped ranges."""

    async def log_starts(self, tps: dict[str, tuple[str, int]]) -> dict[str, int]:
        """First offset of each (topic, partition), by role: where a stage with no checkpoint begins."""
        ...

    async def read_skipped(self, stage: str, msg: InputMessage, start: int) -> list[LogRecord]:
        """The records of ``msg``'s partition from ``start`` up to ``msg`` that the stream skipped,
        counted as read by the consumer (streams.pipeline.input_offsets)."""
        ...

    def highwater(self, topic: str, partition: int) -> int | None:
        """The partition's end offset as last fetched (None when not known yet)."""
        ...

    async def sent_decision_ids(self, partitions: set[int | None]) -> set[str]:
        """Ids among the latest decisions of ``partitions``: what a restarted guard already sent."""
        ...


@dataclass(frozen=True)
class Ports:
    """Everything one stage's runtime reaches the outside through."""

    out: Outbound
    table: StateTable
    commit: Commit
    log: InputLog
    clock: Clock
