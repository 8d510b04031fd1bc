"""SQL behind the fleet gauges that the saved analytics (store/queries.py) do not already
answer as a single figure. ``$db`` is the store's database; every read uses FINAL."""

from __future__ import annotations

from breakfix.report.sql import REMOVED
from schemas.vocab import sql
from store.queries import REPAIRS

# Current state of every node: its last decision (a held one keeps its from_state), Healthy for
# nodes the inventory knows that never had one.
NODES_BY_STATE = sql("""
SELECT if(d.state = '', ${NodeState.HEALTHY}, d.state) AS state, count() AS nodes
FROM (SELECT DISTINCT node FROM $db.node_inventory FINAL
      UNION DISTINCT SELECT DISTINCT node FROM $db.decisions FINAL) AS n
LEFT JOIN (SELECT node, argMax(to_state, time) AS state FROM $db.decisions FINAL
           GROUP BY node) AS d ON n.node = d.node
GROUP BY state ORDER BY state""")

# GPUs out of service now because automation (an executable auto-mode decision) took them out.
CAPACITY_REMOVED = (
    """
SELECT inv.pool AS pool, sum(inv.gpus) AS pool_gpus,
       sumIf(inv.gpus, d.state IN """
    + REMOVED
    + sql(""" AND d.by_automation) AS removed_gpus
FROM (SELECT node, argMax(pool, time) AS pool, argMax(gpus, time) AS gpus
      FROM $db.node_inventory FINAL GROUP BY node) AS inv
LEFT JOIN (SELECT node, argMax(to_state, time) AS state,
                  argMax(executable AND mode = ${Mode.AUTO}, time) AS by_automation
           FROM $db.decisions FINAL GROUP BY node) AS d ON inv.node = d.node
GROUP BY pool ORDER BY pool""")
)

MEAN_REPAIR = (
    "SELECT failure_class, count() AS repairs, avg(seconds) AS mean_s FROM ("
    + REPAIRS
    + ") GROUP BY failure_class ORDER BY failure_class"
)
