"""Process metrics of the streaming stages (node stage, guard, sink) for Prometheus.

Counters and gauges live in prometheus-client's default registry, so whatever serves it (``serve``
below, or the HTTP API mounting it at ``/metrics``) shows them. The stages only call the tiny
recording helpers here, which keeps their hot loops free of metric plumbing. Fleet figures (MTTR,
false positives...) are not here: they come from ClickHouse (breakfix/metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, start_http_server

from schemas.decision import Decision

EVENTS = Counter("breakfix_events_processed_total", "Input messages a stage processed", ["stage"])
DEAD_LETTERS = Counter("breakfix_dead_letters_total", "Events dead-lettered, by reason", ["reason"])
DECISIONS = Counter("breakfix_decisions_total", "Decisions the guard emitted", ["to_state", "mode"])
GUARD_BLOCKS = Counter(
    "breakfix_guard_blocks_total", "Decisions on which a guardrail check failed, by guardrail", ["guardrail"]
)
BREAKER_OPEN = Gauge(
    "breakfix_breaker_open", "1 while the fleet circuit breaker is open (last decision seen)"
)
CONSUMER_LAG = Gauge(
    "breakfix_consumer_lag_messages",
    "High watermark minus committed offset, per consumer group, topic and partition",
    ["group", "topic", "partition"],
)

INPUT_GAPS = Counter(
    "breakfix_input_gaps_total",
    "Runs of input offsets a stage's consumer skipped (read back from the log)",
    ["stage"],
)
INPUT_READ_BACK = Counter(
    "breakfix_input_read_back_total", "Skipped input records read back from the log and applied", ["stage"]
)
STATE_REFUSED = Counter(
    "breakfix_state_records_refused_total",
    "Stored state records refused on restore (unknown, former or corrupt format); the stage rebuilt "
    "that state from its retained input",
    ["stage"],
)
ACTUATOR_RETRYING = Gauge(
    "breakfix_actuator_decisions_retrying",
    "Decisions whose run raised (broker, journal) and that the actuator stage is handling again",
)
SINK_SET_ASIDE = Counter(
    "breakfix_sink_batches_set_aside_total",
    "Spooled batches the store kept refusing, moved to the spool's refused folder so the rest drain",
)


def record_gap(stage: str, read: int) -> None:
    """One skipped run of offsets, of which the log still had ``read`` records."""
    INPUT_GAPS.labels(stage=stage).inc()
    INPUT_READ_BACK.labels(stage=stage).inc(read)


def observe_decision(d: Decision) -> None:
    """Count one emitted decision, the guardrails that failed on it and the breaker it saw."""
    DECISIONS.labels(to_state=d.to_state.value, mode=d.mode.value).inc()
    for check in d.guard:
        if not check.passed:
            GUARD_BLOCKS.labels(guardrail=check.name).inc()
        if check.name == "breaker":
            BREAKER_OPEN.set(0 if check.passed else 1)


def record_lag(group: str, committed: Mapping[Any, int], highwater: Callable[[Any], int | None]) -> None:
    """Set lag for each (topic, partition) just committed; ``highwater`` is the consumer's own."""
    for tp, offset in committed.items():
        hw = highwater(tp)
        if hw is not None:
            CONSUMER_LAG.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(
                max(0, hw - offset)
            )


def serve(port: int, addr: str = "0.0.0.0") -> int:
    """Serve the default registry on ``addr:port`` in a daemon thread; returns the bound port."""
    server, _thread = start_http_server(port, addr)
    return int(server.server_port)
