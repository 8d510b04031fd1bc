"""The report's own ClickHouse SQL: the questions the saved analytics (store/queries.py)
answer as aggregates, asked here at the grain a plot needs (one row per repair, per transition).

``$db`` is the store's database; ``{since:DateTime64(3)}`` is bound server-side. Every read uses
FINAL so a batch the at-least-once sink wrote twice never draws twice.
"""

from __future__ import annotations

from schemas.vocab import OUT_OF_SERVICE, sql, sql_in
from store.queries import JUDGED

REMOVED = sql_in(OUT_OF_SERVICE)

# The time span the report covers; buckets of the over-time plots are sized from it.
SPAN = """
SELECT min(time) AS first, max(time) AS last, count() AS decisions, uniqExact(node) AS nodes
FROM $db.decisions FINAL WHERE time >= {since:DateTime64(3)}"""

FLEET = """
SELECT count() AS nodes, sum(gpus) AS gpus, uniqExact(pool) AS pools FROM (
    SELECT node, argMax(gpus, time) AS gpus, argMax(pool, time) AS pool
    FROM $db.node_inventory FINAL GROUP BY node)"""

# GPUs out of service per pool as a step function: every transition (a held one keeps its
# from_state, so it changes nothing; shadow ones touch no node) adds or removes the node's GPUs,
# and a running sum per pool over time gives the level after each change.
CAPACITY_STEPS = (
    """
SELECT time, pool, sum(delta) OVER (PARTITION BY pool ORDER BY time, node
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS removed_gpus,
       pool_gpus
FROM (
    SELECT d.time AS time, d.node AS node, inv.pool AS pool, pools.pool_gpus AS pool_gpus,
           toInt32(inv.gpus) * (toInt8(d.out) - toInt8(lagInFrame(d.out, 1, false) OVER (
               PARTITION BY d.node ORDER BY d.time
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))) AS delta
    FROM (SELECT node, time, to_state IN """
    + REMOVED
    + sql(""" AS out FROM $db.decisions FINAL
          WHERE mode != ${Mode.SHADOW}) AS d
    INNER JOIN (SELECT node, argMax(pool, time) AS pool, argMax(gpus, time) AS gpus
                FROM $db.node_inventory FINAL GROUP BY node) AS inv ON d.node = inv.node
    INNER JOIN (SELECT pool, sum(gpus) AS pool_gpus FROM (
                    SELECT node, argMax(pool, time) AS pool, argMax(gpus, time) AS gpus
                    FROM $db.node_inventory FINAL GROUP BY node) GROUP BY pool) AS pools
        ON inv.pool = pools.pool
)
WHERE time >= {since:DateTime64(3)}
ORDER BY pool, time""")
)

POOLS = """
SELECT pool, sum(gpus) AS pool_gpus FROM (
    SELECT node, argMax(pool, time) AS pool, argMax(gpus, time) AS gpus
    FROM $db.node_inventory FINAL GROUP BY node)
GROUP BY pool ORDER BY pool"""

# Nodes back to Healthy without a repair: a Suspect whose evidence cleared, or a quarantine whose
# recommended action nobody took while its evidence went quiet.
CLEARANCES = sql("""
SELECT failure_class, trigger, count() AS clearances FROM $db.decisions FINAL
WHERE to_state = ${NodeState.HEALTHY} AND from_state != ${NodeState.HEALTHY}
  AND trigger IN (${Trigger.EVIDENCE_CLEARED}, ${Trigger.CLEARED_WITHOUT_ACTION})
  AND time >= {since:DateTime64(3)}
GROUP BY failure_class, trigger ORDER BY failure_class, trigger""")

# Per class and mode: of the quarantine decisions whose next validation came within a week, how
# many found the fault real (validation failed before, or a repair was needed) vs clean.
# Per-class precision: each quarantine judged by what confirmed it (store.queries.JUDGED).
PRECISION = (
    """
SELECT failure_class, mode, count() AS quarantines, countIf(verdict = 'confirmed') AS confirmed,
       countIf(verdict = 'false') AS cleared, countIf(verdict = 'unconfirmed') AS unvalidated
FROM ("""
    + JUDGED.replace("{window_s:UInt32}", "604800")
    + """)
GROUP BY failure_class, mode ORDER BY failure_class, mode"""
)

# The same panel when ground truth is in the store (the demo loads the simulator's labels into
# ``demo_labels``): a quarantine is confirmed when a label that expects one was active on its node
# within ``{match_s}`` seconds of it, false otherwise - the demo summary's rule, so the two agree.
PRECISION_LABELLED = sql("""
SELECT failure_class, mode, count() AS quarantines, countIf(matched) AS confirmed,
       countIf(NOT matched) AS cleared, 0 AS unvalidated
FROM (SELECT q.id AS id, any(q.failure_class) AS failure_class, any(q.mode) AS mode,
             max(l.node != '' AND q.time >= l.start - toIntervalSecond({match_s:UInt32})
                 AND (l.end IS NULL OR q.time <= l.end + toIntervalSecond({match_s:UInt32}))) AS matched
      FROM (SELECT id, node, time, failure_class, mode FROM $db.decisions FINAL
            WHERE to_state = ${NodeState.QUARANTINED} AND from_state != ${NodeState.QUARANTINED}
              AND time >= {since:DateTime64(3)}) AS q
      LEFT JOIN (SELECT node, start, end FROM $db.demo_labels FINAL WHERE expected = 'quarantine') AS l
      ON q.node = l.node GROUP BY q.id)
GROUP BY failure_class, mode ORDER BY failure_class, mode""")

LABELLED = "EXISTS TABLE $db.demo_labels"
LABEL_MATCH_S = 1800
"""How near a label's span a quarantine must fall to count as its fault (the demo summary's too)."""

# The incident worth showing: the quarantined node with the most recorded activity.
BUSIEST_INCIDENT = sql("""
SELECT node, min(time) AS first, max(time) AS last, count() AS decisions
FROM $db.decisions FINAL
WHERE node IN (SELECT node FROM $db.decisions FINAL
               WHERE to_state = ${NodeState.QUARANTINED} AND time >= {since:DateTime64(3)})
  AND time >= {since:DateTime64(3)}
GROUP BY node ORDER BY decisions DESC, node LIMIT 1""")

INCIDENT_EVIDENCE = """
SELECT time, domain, signal, weight, source, detail FROM $db.evidence FINAL
WHERE node = {node:String} AND time BETWEEN {start:DateTime64(3)} AND {end:DateTime64(3)}
ORDER BY time LIMIT 500"""

INCIDENT_DECISIONS = """
SELECT time, from_state, to_state, failure_class, action, mode, confidence,
       arrayStringConcat(reasons, '; ') AS reasons, arrayStringConcat(guard_failed, ', ') AS guard_failed
FROM $db.decisions FINAL
WHERE node = {node:String} AND time BETWEEN {start:DateTime64(3)} AND {end:DateTime64(3)}
ORDER BY time"""

INCIDENT_ACTIONS = """
SELECT time, kind, action, step, status, validation, initiator FROM $db.actions FINAL
WHERE node = {node:String} AND time BETWEEN {start:DateTime64(3)} AND {end:DateTime64(3)}
ORDER BY time"""
