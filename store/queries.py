"""Saved analytics queries: the questions analysts ask of the audit store, answered the same way
on both engines. ``$db`` is the store's database; ``{name:Type}`` parameters are bound server-side.

Every query reads with FINAL, so rows redelivered by the at-least-once sink never count twice.
Times are event times (the time in the record), so a replay written yesterday of last month's stream
is analysed as last month. See ``breakfix metrics --help`` and docs/operate/audit-store.md for examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.vocab import OUT_OF_SERVICE, sql, sql_in
from store.base import Rows, Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REMOVED_STATES = sql_in(OUT_OF_SERVICE)

_VALIDATIONS = """(SELECT node, time AS validated_at, validation FROM $db.actions FINAL
        WHERE kind = 'result' AND validation != '')"""

# State of every node that has a decision, at the end of each time bucket.
_STATE_AT_BUCKET = sql("""
    SELECT bk.bucket AS bucket, h.node AS node, argMax(h.to_state, h.time) AS state,
           argMax(h.executable AND h.mode = ${Mode.AUTO}, h.time) AS by_automation
    FROM (SELECT node, time, to_state, executable, mode FROM $db.node_state_history FINAL) AS h
    CROSS JOIN (
        SELECT arrayJoin(range(
            intDiv(toUInt32(toUnixTimestamp(min(time))), {bucket_s:UInt32}) * {bucket_s:UInt32},
            toUInt32(toUnixTimestamp(max(time))) + 1, {bucket_s:UInt32})) AS bucket
        FROM $db.node_state_history WHERE time >= {since:DateTime64(3)}
    ) AS bk
    WHERE toUnixTimestamp(h.time) < bk.bucket + {bucket_s:UInt32}
    GROUP BY bucket, node""")

# One row per repair: a node entering Quarantined to the next Healthy decision, when that decision is
# the return through repair and validation (``returned_to_service``). A Suspect that cleared, or a
# quarantine that cleared without its action, is a clearance (the report's ``CLEARANCES``), never a
# repair. The saved ``mttr`` query, the report, ``/metrics`` and the demo summary all count these pairs.
REPAIRS = sql("""
SELECT q.failure_class AS failure_class, q.node AS node,
       dateDiff('millisecond', q.started, h.healthy_at) / 1000 AS seconds
FROM (SELECT node, time AS started, failure_class FROM $db.decisions FINAL
      WHERE to_state = ${NodeState.QUARANTINED} AND from_state != ${NodeState.QUARANTINED}
      AND time >= {since:DateTime64(3)}) AS q
ASOF JOIN (SELECT node, time AS healthy_at, trigger FROM $db.decisions FINAL
           WHERE to_state = ${NodeState.HEALTHY} AND from_state != ${NodeState.HEALTHY}) AS h
ON q.node = h.node AND q.started < h.healthy_at
WHERE h.trigger = ${Trigger.RETURNED_TO_SERVICE}
ORDER BY failure_class, seconds""")

REPAIRING = "('gpu_reset', 'reboot', 'reimage', 'rma')"
"""Actions that repair (a drain repairs nothing): a check after one of them tells whether the repair
worked, not whether the fault was real."""

# Every quarantine a node entered, judged by what confirmed its fault: ``confirmed`` when a check on
# the node (a diagnostic or validation result) failed within the window after it - before the repair,
# or one the fault outlived; ``false`` when its first check came back clean before any repair ran;
# ``unconfirmed`` otherwise (a clean validation after a repair cannot tell a fixed fault from none, or
# nothing was checked). The report's precision panel and the fleet exporter both read this.
JUDGED = sql("""
    SELECT node, decision_id, failure_class, mode, quarantined_at,
           multiIf(failed_at != 0, 'confirmed',
                   clean_at != 0 AND (repair_at = 0 OR clean_at < repair_at), 'false',
                   'unconfirmed') AS verdict
    FROM (
        SELECT q.decision_id AS decision_id, any(q.node) AS node, any(q.failure_class) AS failure_class,
               any(q.mode) AS mode, any(q.quarantined_at) AS quarantined_at,
               minIf(a.ms, a.ms > q.ms AND a.ms <= q.ms + {window_s:UInt32} * 1000
                     AND a.validation = 'failed') AS failed_at,
               minIf(a.ms, a.ms > q.ms AND a.ms <= q.ms + {window_s:UInt32} * 1000
                     AND a.validation = 'passed') AS clean_at,
               minIf(a.ms, a.ms > q.ms AND a.ms <= q.ms + {window_s:UInt32} * 1000 AND a.repair) AS repair_at
        FROM (SELECT id AS decision_id, node, time AS quarantined_at, toUnixTimestamp64Milli(time) AS ms,
                     failure_class, mode
              FROM $db.decisions FINAL
              WHERE to_state = ${NodeState.QUARANTINED} AND from_state != ${NodeState.QUARANTINED}
                AND time >= {since:DateTime64(3)}) AS q
        LEFT JOIN (SELECT node, toUnixTimestamp64Milli(time) AS ms, validation,
                          validation = '' AND step != 'validate' AND action IN $REPAIRING AS repair
                   FROM $db.actions FINAL WHERE kind = 'result') AS a
        ON q.node = a.node
        GROUP BY q.decision_id
    )""").replace("$REPAIRING", REPAIRING)


@dataclass(frozen=True)
class SavedQuery:
    name: str
    title: str
    sql: str = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    """Parameters the SQL binds, with their defaults."""


SAVED: tuple[SavedQuery, ...] = (
    SavedQuery(
        "automation_success_rate",
        "Automation success rate per action: finished automated steps that succeeded",
        """
        SELECT if(grouping(r.action) = 1, '(all)', toString(r.action)) AS action, count() AS finished,
               countIf(r.status = 'succeeded') AS succeeded, round(succeeded / finished, 4) AS success_rate
        FROM (SELECT * FROM $db.actions FINAL WHERE kind = 'result'
              AND status IN ('succeeded', 'failed', 'timeout') AND time >= {since:DateTime64(3)}) AS r
        LEFT JOIN (SELECT decision_id, any(initiator) AS initiator FROM $db.actions FINAL
                   WHERE kind = 'request' GROUP BY decision_id) AS q ON r.decision_id = q.decision_id
        WHERE if(q.initiator = '', r.initiator, q.initiator) = 'automation'
        GROUP BY GROUPING SETS ((r.action), ()) ORDER BY action""",
        {"since": EPOCH},
    ),
    SavedQuery(
        "manual_override_rate",
        "Manual override rate: action steps a human started instead of automation, and human control changes",
        """
        SELECT count() AS steps, countIf(initiator = 'human') AS human_steps,
               if(steps > 0, round(human_steps / steps, 4), 0) AS manual_override_rate,
               (SELECT count() FROM $db.audit FINAL WHERE surface = 'control' AND initiator = 'human'
                AND time >= {since:DateTime64(3)}) AS human_control_changes
        FROM $db.actions FINAL WHERE kind = 'request' AND time >= {since:DateTime64(3)}""",
        {"since": EPOCH},
    ),
    SavedQuery(
        "false_positive_quarantines",
        "False-positive quarantines: the first check after the quarantine came back clean before any repair",
        "SELECT node, decision_id, failure_class, quarantined_at FROM ("
        + JUDGED
        + ") WHERE verdict = 'false' ORDER BY quarantined_at, node",
        {"since": EPOCH, "window_s": 7 * 86400},
    ),
    SavedQuery(
        "false_positive_rate",
        "False-positive rate per failure class among quarantines a check judged (confirmed or false)",
        "SELECT failure_class, countIf(verdict != 'unconfirmed') AS validated_quarantines,"
        " countIf(verdict = 'false') AS false_positives,"
        " round(if(validated_quarantines = 0, 0, false_positives / validated_quarantines), 4)"
        " AS false_positive_rate FROM (" + JUDGED + ") GROUP BY failure_class ORDER BY failure_class",
        {"since": EPOCH, "window_s": 7 * 86400},
    ),
    SavedQuery(
        "mttr",
        "MTTR per failure class: a node entering Quarantined to its return through repair and validation "
        "(returned_to_service; clearances without a repair are not repairs) (seconds)",
        "SELECT failure_class, count() AS repaired,"
        " round(quantileExactInclusive(0.5)(seconds), 1) AS mttr_median_s,"
        " round(quantileExactInclusive(0.9)(seconds), 1) AS mttr_p90_s"
        " FROM (" + REPAIRS + ") GROUP BY failure_class ORDER BY failure_class",
        {"since": EPOCH},
    ),
    SavedQuery(
        "nodes_by_state",
        "Nodes by state at the end of each bucket (nodes with at least one decision)",
        "SELECT toDateTime(bucket, 'UTC') AS bucket_start, state, count() AS nodes FROM ("
        + _STATE_AT_BUCKET
        + ") GROUP BY bucket, state ORDER BY bucket, state",
        {"since": EPOCH, "bucket_s": 3600},
    ),
    SavedQuery(
        "capacity_removed",
        "GPUs removed by automation (Quarantined/Repairing/Validating) per pool and bucket vs the pool",
        """
        SELECT toDateTime(s.bucket, 'UTC') AS bucket_start, inv.pool AS pool,
               sumIf(inv.gpus, s.state IN """
        + REMOVED_STATES
        + """ AND s.by_automation) AS removed_gpus,
               any(pools.pool_gpus) AS pool_gpus,
               round(removed_gpus / pool_gpus, 4) AS removed_fraction
        FROM ("""
        + _STATE_AT_BUCKET
        + """) AS s
        INNER JOIN (SELECT node, argMax(pool, time) AS pool, argMax(gpus, time) AS gpus
                    FROM $db.node_inventory FINAL GROUP BY node) AS inv ON s.node = inv.node
        INNER JOIN (SELECT pool, sum(gpus) AS pool_gpus FROM (
                        SELECT node, argMax(pool, time) AS pool, argMax(gpus, time) AS gpus
                        FROM $db.node_inventory FINAL GROUP BY node) GROUP BY pool) AS pools
            ON inv.pool = pools.pool
        GROUP BY s.bucket, inv.pool ORDER BY s.bucket, inv.pool""",
        {"since": EPOCH, "bucket_s": 3600},
    ),
    SavedQuery(
        "repeat_offenders",
        "Repeat offenders: nodes quarantined at least min_quarantines times since the start of the window",
        sql("""
        SELECT node, count() AS quarantines, min(time) AS first_at, max(time) AS last_at,
               arraySort(groupUniqArray(failure_class)) AS classes
        FROM $db.decisions FINAL WHERE to_state = ${NodeState.QUARANTINED} AND time >= {since:DateTime64(3)}
        GROUP BY node HAVING quarantines >= {min_quarantines:UInt32} ORDER BY quarantines DESC, node"""),
        {"since": EPOCH, "min_quarantines": 2},
    ),
    SavedQuery(
        "shadow_precision",
        "Per-class precision of shadow quarantines: the next validation in the window failed (fault real)",
        sql("""
        SELECT failure_class, count() AS shadow_quarantines,
               countIf(matched AND validation = 'failed') AS confirmed,
               countIf(matched AND validation = 'passed') AS cleared, countIf(NOT matched) AS unvalidated,
               if(confirmed + cleared > 0, round(confirmed / (confirmed + cleared), 4), NULL) AS precision
        FROM (
            SELECT s.failure_class AS failure_class, v.validation AS validation,
                   toUnixTimestamp64Milli(v.validated_at) != 0
                   AND v.validated_at <= s.decided_at + toIntervalSecond({window_s:UInt32}) AS matched
            FROM (SELECT node, time AS decided_at, failure_class FROM $db.decisions FINAL
                  WHERE mode = ${Mode.SHADOW} AND to_state = ${NodeState.QUARANTINED}
                        AND time >= {since:DateTime64(3)}) AS s
            ASOF LEFT JOIN """)
        + _VALIDATIONS
        + """ AS v ON s.node = v.node AND s.decided_at < v.validated_at
        )
        GROUP BY failure_class ORDER BY failure_class""",
        {"since": EPOCH, "window_s": 7 * 86400},
    ),
)
BY_NAME = {q.name: q for q in SAVED}


def run_saved(store: Store, name: str, **params: Any) -> Rows:
    """Run a saved query; unknown parameters are ignored, missing ones take their defaults."""
    q = BY_NAME[name]
    bound = {k: params.get(k, v) if params.get(k) is not None else v for k, v in q.params.items()}
    return store.query(q.sql.replace("$db", store.database), bound)
