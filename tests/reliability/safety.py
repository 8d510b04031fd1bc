"""``assert_safe``: the safety invariants (policy/invariants.py) applied to a test's decision log.

Every test that produces decisions (offline replay, the stage harness, the streaming pipeline, the
CLI) calls it on its log, so a guard regression fails the test that exposed it, not only this suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from policy.invariants import LogItem, Violation, check, placements_from_events
from policy.model import Policy, load_policy
from schemas.decision import Decision
from schemas.events import Envelope
from schemas.parse import parse_event
from schemas.proposal import Placement
from schemas.recording import iter_lines


def placements_of(recording: str | Path) -> dict[str, Placement]:
    """Node placements from a recording's ``node.inventory`` lines (bad lines are skipped)."""
    events = (parse_event(raw) for _, raw in iter_lines(recording) if b"node.inventory" in raw)
    return placements_from_events(e for e in events if isinstance(e, Envelope))


def violations(
    log: Iterable[LogItem],
    recording: str | Path | None = None,
    placements: Mapping[str, Placement] | None = None,
    policy: Policy | None = None,
    others: Iterable[str] = (),
) -> list[Violation]:
    pol = policy or load_policy(None)
    places = dict(placements or {})
    if recording is not None:
        places = {**placements_of(recording), **places}
    return check(log, places, pol.min_healthy_fraction, pol.concurrency.per_rack, others)


def assert_safe(
    log: Iterable[LogItem],
    recording: str | Path | None = None,
    placements: Mapping[str, Placement] | None = None,
    policy: Policy | None = None,
    others: Iterable[str] = (),
) -> int:
    """Fail with every violation listed; return how many decisions were checked (for figures).

    The log is put in time order first (a stable sort, so each node's own order is kept): decisions
    read back from the 12-partition decisions topic arrive partition by partition, and judging them in
    that order would report rack and headroom overlaps the guard never made."""
    items = sorted(log, key=lambda i: i.time)
    found = violations(items, recording, placements, policy, others)
    assert not found, "safety invariant violated:\n" + "\n".join(str(v) for v in found[:20])
    return sum(1 for i in items if isinstance(i, Decision))


def assert_safe_jsonl(decisions: str | Path, recording: str | Path | None = None) -> int:
    """``assert_safe`` over a decisions file written by ``breakfix replay --out``."""
    lines = Path(decisions).read_bytes().splitlines()
    return assert_safe([Decision.model_validate_json(x) for x in lines if x.strip()], recording)
