"""The store-backed :class:`~breakfix.api.ports.StateReader`: node placement from ``node_inventory``,
labels from the latest ``node.inventory`` event, the current state (and the GPU it names, if any) from
the latest decision, evidence and decisions as the sink wrote them.

Every read uses FINAL (the sink is at-least-once) and ignores replayed decisions: a policy replay
written into the same store must never show up as a node's live state.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from breakfix.api import sqlguard
from schemas.events import NodeInventory
from schemas.vocab import sql, sql_literal
from store.base import Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST = datetime(2299, 12, 31, tzinfo=UTC)  # DateTime64's upper bound


def _since(t: datetime | None) -> datetime:
    """A ``since`` the store can bind: UTC (naive means UTC), clamped to DateTime64's range."""
    if t is None:
        return EPOCH
    aware = t if t.tzinfo else t.replace(tzinfo=UTC)
    return min(max(aware.astimezone(UTC), EPOCH), LAST)


_NODES = sql("""
SELECT inv.node AS node, inv.pool AS pool, inv.rack AS rack, inv.sku AS sku, inv.gpus AS gpus,
       if(st.state = '', ${NodeState.HEALTHY}, st.state) AS state, st.since AS since,
       st.failure_class AS failure_class, st.confidence AS confidence, st.gpu AS gpu, lb.labels AS labels
FROM (SELECT node, argMax(pool, time) AS pool, argMax(rack, time) AS rack, argMax(sku, time) AS sku,
             argMax(gpus, time) AS gpus FROM $db.node_inventory FINAL GROUP BY node) AS inv
LEFT JOIN (SELECT node, argMax(to_state, time) AS state, max(time) AS since,
                  argMax(failure_class, time) AS failure_class, argMax(confidence, time) AS confidence,
                  argMax(gpu, time) AS gpu
           FROM $db.decisions FINAL WHERE NOT replay GROUP BY node) AS st ON inv.node = st.node
LEFT JOIN (SELECT node, argMax(JSONExtract(data, 'labels', 'Map(String, String)'), time) AS labels
           FROM $db.events WHERE type = $inventory AND ({node:String} = '' OR node = {node:String})
           GROUP BY node) AS lb ON inv.node = lb.node
WHERE ({pool:String} = '' OR inv.pool = {pool:String})
  AND ({node:String} = '' OR inv.node = {node:String})
  AND ({state:String} = '' OR if(st.state = '', ${NodeState.HEALTHY}, st.state) = {state:String})
ORDER BY node LIMIT {limit:UInt32}""").replace(
    "$inventory", sql_literal(NodeInventory.model_fields["type"].default)
)

_DECISIONS = """
SELECT id, time, node, gpu, from_state, to_state, trigger, failure_class, confidence, action, mode,
       executable, reasons, evidence, guard_failed, policy_version, incident_id, stale
FROM $db.decisions FINAL
WHERE NOT replay AND ({node:String} = '' OR node = {node:String}) AND time >= {since:DateTime64(3)}
ORDER BY time DESC, id LIMIT {limit:UInt32}"""

_EVIDENCE = """
SELECT id, time, gpu, domain, signal, weight, decisive, source, event_ids, attribution, detail
FROM $db.evidence FINAL WHERE node = {node:String} ORDER BY time DESC, id LIMIT {limit:UInt32}"""

_AUDIT = """
SELECT id, time, actor, role, initiator, surface, action, target, allowed, status, detail, params
FROM $db.audit FINAL
WHERE time >= {since:DateTime64(3)} AND ({actor:String} = '' OR actor = {actor:String})
ORDER BY time DESC, id LIMIT {limit:UInt32}"""


_KILLSWITCHES = sql("""
SELECT scope, argMax(value, (log_offset, time)) AS value, argMax(time, (log_offset, time)) AS at
FROM $db.control FINAL
WHERE kind = ${ControlKind.KILLSWITCH} GROUP BY scope ORDER BY scope""")
"""Each scope's kill switch as last written to the control topic (its log offset; ``time`` only for
rows recorded before the store kept offsets): a future-dated lever cannot pin a restarted API."""

_PLAN_DECISIONS = """
SELECT id, time, node, executable, reasons, guard_failed, to_state FROM $db.decisions FINAL
WHERE id IN {ids:Array(String)} AND NOT replay ORDER BY time, id"""

_PLAN_RESULTS = """
SELECT id, time, decision_id, node, step, status, detail, playbook FROM $db.actions FINAL
WHERE kind = 'result' AND decision_id IN {ids:Array(String)} AND NOT replay ORDER BY time, id"""


def _value(v: Any) -> Any:
    """A store value as JSON-friendly data (aware times, tuples as lists)."""
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, tuple):
        return list(v)
    return v


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in row.items()}


class StoreStateReader:
    """Reads through a :class:`~store.base.Store` connection; calls on one connection are
    serialised (a clickhouse-connect client, chdb's included, serves one thread at a time).

    Ad-hoc SQL has a connection and a lock of its own (``sql_store``, a session with the product's
    database current), so one heavy analyst query, bounded by ``sql_limits``, never holds up the
    product's own reads, audit writes or levers."""

    def __init__(
        self,
        store: Store,
        lock: threading.Lock | None = None,
        sql_store: Store | None = None,
        sql_limits: sqlguard.Limits | None = None,
    ) -> None:
        self.store = store
        self.lock = lock or threading.Lock()
        self.sql_store = sql_store or store
        self.sql_lock = threading.Lock() if sql_store is not None else self.lock
        self.sql_limits = sql_limits or sqlguard.Limits()

    def _q(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.store.query(sql.replace("$db", self.store.database), params)
        return [_clean(r) for r in rows.dicts()]

    def nodes(self, pool: str = "", state: str = "", limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._q(_NODES, {"pool": pool, "state": state, "node": "", "limit": limit})
        for r in rows:
            if r["since"] is None or r["since"] <= EPOCH:
                r["since"], r["failure_class"], r["confidence"] = None, None, None
        return rows

    def node(self, node: str, limit: int = 50) -> dict[str, Any] | None:
        found = self._q(_NODES, {"pool": "", "state": "", "node": node, "limit": 1})
        if not found:
            return None
        out = found[0]
        if out["since"] is None or out["since"] <= EPOCH:
            out["since"], out["failure_class"], out["confidence"] = None, None, None
        out["evidence"] = self._q(_EVIDENCE, {"node": node, "limit": limit})
        out["decisions"] = self.decisions(node=node, limit=limit)
        return out

    def decisions(
        self, node: str = "", since: datetime | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self._q(_DECISIONS, {"node": node, "since": _since(since), "limit": limit})

    def audit(self, since: datetime | None = None, actor: str = "", limit: int = 100) -> list[dict[str, Any]]:
        rows = self._q(_AUDIT, {"since": _since(since), "actor": actor, "limit": limit})
        for r in rows:
            r["params"] = orjson.loads(r["params"]) if r["params"] else {}
        return rows

    def killswitches(self) -> dict[str, tuple[bool, datetime]]:
        """The latest kill-switch state per scope (``global``, ``pool:<name>``) the sink recorded
        from the control topic, by log position, with its time: what a restarted API starts from."""
        rows = self._q(_KILLSWITCHES, {})
        return {r["scope"]: (bool(orjson.loads(r["value"] or "{}").get("on", True)), r["at"]) for r in rows}

    def plan_runs(self, decision_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """What the guard decided for an operator plan's steps and what the actuator stage reported
        for them, as the sink recorded both (the API runs no actuator: this is how it sees a plan)."""
        params = {"ids": list(decision_ids)}
        return self._q(_PLAN_DECISIONS, params), self._q(_PLAN_RESULTS, params)

    def sql(self, query: str, limit: int = 1000) -> dict[str, Any]:
        """One read-only SELECT of the product's tables judged by ClickHouse's parser and run under
        the limits (:mod:`breakfix.api.sqlguard`); raises ``SqlRefused`` (a ValueError) on refusal,
        ``StoreError`` when ClickHouse stops it (time, memory)."""
        with self.sql_lock:
            rows = sqlguard.run(self.sql_store, query, limit, self.sql_limits)
        return {
            "columns": list(rows.columns),
            "rows": [[_value(v) for v in r] for r in rows.rows],
        }
