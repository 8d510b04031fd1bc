"""The demo's closing summary, computed with ClickHouse SQL over what the sink stored.

Ground truth is not telemetry, so the simulator's labels are loaded into a ``demo_labels`` table of
the same store first; false positives and detected faults are then joins between decisions and
labels. A quarantine counts as a true positive when a label that expects one (``expected =
'quarantine'``) was active on that node within ``MATCH_S`` of the decision. Every query reads with
FINAL, so rows the at-least-once sink delivered twice count once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from breakfix.report.sql import CLEARANCES, LABEL_MATCH_S
from schemas.vocab import OUT_OF_SERVICE, sql, sql_in
from sim.simulator.labels import read_labels
from store.base import Store
from store.queries import REPAIRS

MATCH_S = LABEL_MATCH_S
REMOVED = sql_in(OUT_OF_SERVICE)

LABELS_DDL = """
CREATE TABLE IF NOT EXISTS $db.demo_labels
(id String, node String, gpu Nullable(UInt8), failure_class String, start DateTime64(3, 'UTC'),
 end Nullable(DateTime64(3, 'UTC')), scenario String, truth String, expected String, repair String)
ENGINE = ReplacingMergeTree ORDER BY (node, id)"""
LABEL_COLUMNS = (
    "id", "node", "gpu", "failure_class", "start", "end", "scenario", "truth", "expected", "repair",
)  # fmt: skip

QUERIES: dict[str, str] = {
    "faults": sql("""
        SELECT countIf(truth = 'fault') AS injected, uniqExactIf(scenario, truth = 'fault') AS scenarios,
               countIf(truth = 'fault' AND detected) AS detected
        FROM (SELECT l.id AS id, any(l.truth) AS truth, any(l.scenario) AS scenario,
                     max(d.node != '' AND d.time >= l.start - toIntervalSecond({match_s:UInt32})
                         AND (l.end IS NULL OR d.time <= l.end + toIntervalSecond({match_s:UInt32})))
                         AS detected
              FROM $db.demo_labels AS l FINAL
              LEFT JOIN (SELECT node, time FROM $db.decisions FINAL
                         WHERE to_state IN (${NodeState.SUSPECT}, ${NodeState.QUARANTINED})
                               AND from_state != to_state) AS d
              ON l.node = d.node GROUP BY l.id)"""),
    "decisions": """
        SELECT to_state AS state, mode, count() AS decisions, countIf(executable) AS executed
        FROM $db.decisions FINAL GROUP BY state, mode ORDER BY state, mode""",
    "quarantines": sql("""
        SELECT count() AS quarantines, countIf(executable) AS executed,
               countIf(NOT matched) AS false_positives
        FROM (SELECT q.id AS id, any(q.executable) AS executable,
                     max(l.node != '' AND q.time >= l.start - toIntervalSecond({match_s:UInt32})
                         AND (l.end IS NULL OR q.time <= l.end + toIntervalSecond({match_s:UInt32})))
                         AS matched
              FROM (SELECT id, node, time, executable FROM $db.decisions FINAL
                    WHERE to_state = ${NodeState.QUARANTINED} AND from_state != ${NodeState.QUARANTINED}) AS q
              LEFT JOIN (SELECT node, start, end FROM $db.demo_labels FINAL
                         WHERE expected = 'quarantine') AS l
              ON q.node = l.node GROUP BY q.id)"""),
    "mttr": f"""
        SELECT count() AS repaired, round(quantileExactInclusive(0.5)(seconds) / 60, 1) AS median_min,
               round(quantileExactInclusive(0.9)(seconds) / 60, 1) AS p90_min
        FROM ({REPAIRS.replace("{since:DateTime64(3)}", "toDateTime64(0, 3)")})""",
    "clearances": f"""
        SELECT sum(clearances) AS cleared
        FROM ({CLEARANCES.replace("{since:DateTime64(3)}", "toDateTime64(0, 3)")})""",
    "capacity": f"""
        SELECT uniqExact(node) AS nodes, round(sum(secs) / 3600, 2) AS node_hours
        FROM (SELECT node, to_state,
                     dateDiff('millisecond', time, leadInFrame(time, 1, {{end:DateTime64(3)}})
                         OVER (PARTITION BY node ORDER BY time
                               ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)) / 1000 AS secs
              FROM $db.decisions FINAL WHERE from_state != to_state)
        WHERE to_state IN {REMOVED}""",
    "workflows": """
        SELECT multiIf(status = 'succeeded', 'succeeded', position(detail, 'escalated') = 1, 'escalated',
                       status = 'refused', 'refused', status) AS outcome, count() AS runs
        FROM $db.actions FINAL WHERE kind = 'result' AND step = 'workflow'
        GROUP BY outcome ORDER BY outcome""",
    "dead_letters": """
        SELECT reason, count() AS letters FROM $db.dead_letters FINAL
        GROUP BY reason ORDER BY letters DESC""",
}


@dataclass
class Summary:
    faults: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    quarantines: dict[str, Any] = field(default_factory=dict)
    mttr: dict[str, Any] = field(default_factory=dict)
    capacity: dict[str, Any] = field(default_factory=dict)
    workflows: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    report: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_labels(store: Store, path: Path) -> int:
    store.command(LABELS_DDL.replace("$db", store.database))
    fields = ("id", "node", "gpu", "failure_class", "start", "end", "scenario", "truth", "expected")
    rows = [(*(getattr(x, f) for f in fields), x.repair or "") for x in read_labels(path)]
    if rows:
        store.insert("demo_labels", LABEL_COLUMNS, rows)
    return len(rows)


def query(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    sql = QUERIES[name].replace("$db", store.database)
    return store.query(sql, {"match_s": MATCH_S, **params}).dicts()


def _no_nan(row: dict[str, Any]) -> dict[str, Any]:
    """A quantile over no rows is NaN in ClickHouse; a summary says "none" instead (None here).

    >>> _no_nan({"repaired": 0, "median_min": float("nan")})
    {'repaired': 0, 'median_min': None}
    """
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def summarize(store: Store, end: datetime) -> Summary:
    """Every figure of the summary, from the store."""
    one = {
        name: _no_nan((query(store, name, end=end) or [{}])[0])
        for name in ("faults", "quarantines", "mttr", "clearances", "capacity")
    }
    return Summary(
        faults=one["faults"],
        decisions=query(store, "decisions"),
        quarantines=one["quarantines"],
        mttr={**one["mttr"], "cleared_without_repair": int(one["clearances"].get("cleared") or 0)},
        capacity=one["capacity"],
        workflows={r["outcome"]: int(r["runs"]) for r in query(store, "workflows")},
        dead_letters={r["reason"]: int(r["letters"]) for r in query(store, "dead_letters")},
    )
