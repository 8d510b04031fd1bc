"""Which input offsets a stage's state already covers: kept, and checkpointed, with that state.

Faust commits consumer offsets on its own schedule and resumes a partition from them, which is not
enough for "nothing lost on restart": a partition that never had an offset committed is not sought
back at all after a rebalance (aiokafka's ``seek_to_committed`` skips it), so it resumes wherever
the fetcher had got to, past input this worker applied in memory and then dropped with the
revocation; and a message can be dropped between fetch and agent when a rebalance suspends the flow.
Either way the agent sees a *gap*: an offset beyond the next one its state needs.

So each stage keeps, per input topic of a partition, the next offset its state needs, and writes it
in the same checkpoint as the state. A message past that offset means the records in between were
skipped; the shell reads them back from the log (:mod:`streams.pipeline.gap_reader`) and applies them first.
Re-delivered input (offset below the mark) is the stages' usual at-least-once case and is handled as
before. Pure: no Kafka here.
"""

from __future__ import annotations

from collections.abc import Mapping


class InputOffsets:
    """Next offset per input topic role ("events", "decisions", "proposals", "control")."""

    def __init__(self, stored: Mapping[str, int] | None = None) -> None:
        self.next: dict[str, int] = {str(k): int(v) for k, v in (stored or {}).items()}

    def missing_from(self, role: str, offset: int) -> int | None:
        """First offset skipped before ``offset``, or None when nothing was (or nothing is known:
        state written before offsets were kept starts checking from its first message)."""
        want = self.next.get(role)
        return want if want is not None and offset > want else None

    def admit(self, role: str, offset: int) -> int | None:
        """None when the message is next (or re-delivered) and may be applied: it counts as read.
        Otherwise the first offset skipped before it, which the shell reads back and applies first."""
        gap = self.missing_from(role, offset)
        if gap is None:
            self.applied(role, offset)
        return gap

    def applied(self, role: str, offset: int) -> None:
        self.next[role] = max(self.next.get(role, offset + 1), offset + 1)

    def start(self, role: str, offset: int) -> None:
        """Where a partition with no checkpoint yet begins (its log start): nothing before it to miss."""
        self.next.setdefault(role, offset)

    def unknown(self, roles: list[str]) -> list[str]:
        return [r for r in roles if r not in self.next]

    def to_dict(self) -> dict[str, int]:
        return dict(self.next)
