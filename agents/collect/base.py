"""What every collector shares: the Collector protocol, sinks (recording file or Kafka) and the loop.

A collector turns one source (NVML, dcgm-exporter, kernel log, Kubernetes, SLURM) into envelope dicts;
it never writes anywhere itself. The loop in :func:`run` sends what a round produced to a sink, which
validates every event against the contract first, and adds an ``agent.heartbeat`` per node the
collector covers after every round, so the node stage can tell a silent collector from a healthy node.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agents.collect.heartbeat import heartbeats
from schemas.deadletter import DeadLetter
from schemas.events import Envelope, event_type_of
from schemas.recording import RecordingWriter
from streams.kafka.producer import SyncEventProducer, check

log = logging.getLogger(__name__)

Event = dict[str, Any]


class CollectorUnavailable(RuntimeError):
    """The source cannot be read at all (no driver, no endpoint, no command). Permanent: say what to do."""


class Collector(Protocol):
    """One source. ``poll`` yields the events of one round and may block until ``deadline``
    (``time.monotonic()`` seconds) to wait for streamed events (Xid events, watch events, log lines);
    it must return by then. ``nodes`` are the node ids it currently reports on (for heartbeats).
    A collector that drops parts of what it reads (a bad series, a refused field) counts them by
    reason in an ``unused`` Counter attribute, which :func:`run` reports."""

    name: str
    interval_s: float

    def poll(self, deadline: float) -> Iterator[Event]: ...

    def nodes(self) -> list[str]: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Where validated events go. ``send`` returns the parsed event or the dead letter it became."""

    def send(self, event: Mapping[str, Any]) -> Envelope | DeadLetter: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class RecordingSink:
    """Validated events to a JSON Lines recording; refused ones are logged and counted, not written,
    so the file replays clean (``breakfix validate`` passes on it)."""

    def __init__(self, path: str | Path) -> None:
        self._writer = RecordingWriter(path)

    def send(self, event: Mapping[str, Any]) -> Envelope | DeadLetter:
        parsed = check(event, "collect")
        if isinstance(parsed, DeadLetter):
            log.warning("dropped invalid %s event: %s", event.get("type"), parsed.message)
        else:
            self._writer.write(parsed)
        return parsed

    def flush(self) -> None:
        # RecordingWriter has no flush(); stdout is flushed so a pipe sees each round at once, files
        # get their lines when the OS buffer fills or on close.
        if self._writer.path == "-":
            sys.stdout.buffer.flush()

    def close(self) -> None:
        self._writer.close()


class KafkaSink:
    """Validated events to ``breakfix.events`` keyed by node; refused ones to ``breakfix.deadletter``."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = SyncEventProducer(bootstrap, client_id="breakfix-collect")

    def send(self, event: Mapping[str, Any]) -> Envelope | DeadLetter:
        return self._producer.send(event, "collect")

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        self._producer.close()


@dataclass
class RunStats:
    rounds: int = 0
    events: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    unused: Counter[str] = field(default_factory=Counter)
    """Series, lines or fields the collector read but could not use, by reason (its ``unused``)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "events": dict(self.events),
            "refused": dict(self.refused),
            "unused": dict(self.unused),
        }


def _send_all(sink: Sink, events: Iterable[Event], stats: RunStats) -> None:
    for ev in events:
        parsed = sink.send(ev)
        if isinstance(parsed, DeadLetter):
            stats.refused[parsed.reason.value] += 1
        else:
            stats.events[event_type_of(parsed)] += 1


def run(
    collector: Collector,
    sink: Sink,
    once: bool = False,
    stop: threading.Event | None = None,
    max_rounds: int | None = None,
) -> RunStats:
    """Poll rounds until ``stop`` is set (or one round with ``once``); a heartbeat closes each round.

    A round that raises a transient error is logged and retried next interval: a collector outlives
    a flaky source and its silence shows up as missing heartbeats, never as a crash loop. With
    ``once`` the error propagates, so a one-shot run exits non-zero with the cause.
    """
    stop = stop or threading.Event()
    stats = RunStats()
    try:
        while not stop.is_set():
            start = time.monotonic()
            deadline = start if once else start + collector.interval_s
            try:
                _send_all(sink, collector.poll(deadline), stats)
            except Exception:
                if once or isinstance(sys.exc_info()[1], CollectorUnavailable):
                    raise
                log.exception("collector %s: round failed; retrying next interval", collector.name)
            else:
                _send_all(sink, heartbeats(collector.name, collector.interval_s, collector.nodes()), stats)
            sink.flush()
            stats.rounds += 1
            if once or (max_rounds is not None and stats.rounds >= max_rounds):
                break
            stop.wait(max(0.0, deadline - time.monotonic()))
    finally:
        collector.close()
        stats.unused.update(getattr(collector, "unused", None) or {})
    return stats
