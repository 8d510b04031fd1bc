"""The fleet figures (automation success, overrides, false positives, MTTR, capacity) as Prometheus
gauges, computed from ClickHouse at scrape time.

Nothing is cached or counted in process: every scrape runs the same SQL an analyst would (the saved
queries plus :mod:`breakfix.metrics.sql`), so ``/metrics`` equals the store's figures for the same
data by construction, and any number of these exporters agree. A failing store yields
``breakfix_store_up 0`` and no fleet figures, never a crashed scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from breakfix.metrics import sql
from store.base import Store, StoreError
from store.queries import EPOCH, run_saved

MIN_QUARANTINES = 2


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class FleetCollector(Collector):
    """Reads ``store`` on every ``collect()``; ``window_s`` limits figures to recent decisions."""

    def __init__(self, store: Store, window_s: float | None = None) -> None:
        self.store = store
        self.window_s = window_s
        self._lock = threading.Lock()  # one engine handle: scrapes from several threads take turns

    def _since(self) -> datetime:
        return EPOCH if self.window_s is None else datetime.now(UTC) - timedelta(seconds=self.window_s)

    def _rows(self, text: str) -> list[dict[str, Any]]:
        return self.store.query(text.replace("$db", self.store.database)).dicts()

    def collect(self) -> Iterator[Metric]:
        up = _gauge("breakfix_store_up", "1 when the last scrape could read the audit store")
        with self._lock:
            try:
                families = list(self._families(self._since()))
            except StoreError:
                up.add_metric([], 0)
                yield up
                return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, since: datetime) -> Iterator[Metric]:
        s = self.store
        success = _gauge(
            "breakfix_automation_success_ratio",
            "Automated action steps that succeeded / finished (action='all' for every action)",
            ["action"],
        )
        finished = _gauge("breakfix_automation_steps_finished", "Automated action steps finished", ["action"])
        for r in run_saved(s, "automation_success_rate", since=since).dicts():
            action = "all" if r["action"] == "(all)" else r["action"]
            success.add_metric([action], float(r["success_rate"]))
            finished.add_metric([action], float(r["finished"]))
        yield success
        yield finished

        [mo] = run_saved(s, "manual_override_rate", since=since).dicts()
        override = _gauge("breakfix_manual_override_ratio", "Action steps a human started / all steps")
        override.add_metric([], float(mo["manual_override_rate"]))
        human = _gauge("breakfix_human_control_changes", "Control changes (kill switch, modes...) by humans")
        human.add_metric([], float(mo["human_control_changes"]))
        yield override
        yield human

        fp = _gauge(
            "breakfix_false_positive_quarantines",
            "Quarantines whose first check within 7 days came back clean before any repair ran",
            ["failure_class"],
        )
        validated = _gauge(
            "breakfix_validated_quarantines",
            "Quarantines a check judged (confirmed or false) within 7 days",
            ["failure_class"],
        )
        for r in run_saved(s, "false_positive_rate", since=since).dicts():
            fp.add_metric([r["failure_class"]], float(r["false_positives"]))
            validated.add_metric([r["failure_class"]], float(r["validated_quarantines"]))
        yield fp
        yield validated

        mean = _gauge(
            "breakfix_mean_repair_seconds",
            "Mean time from the first Suspect/Quarantined decision to the next Healthy one",
            ["failure_class"],
        )
        repairs = _gauge(
            "breakfix_repairs",
            "Completed repairs (quarantined, repaired, validated, back to Healthy)",
            ["failure_class"],
        )
        for r in self.store.query(sql.MEAN_REPAIR.replace("$db", s.database), {"since": since}).dicts():
            mean.add_metric([r["failure_class"]], float(r["mean_s"]))
            repairs.add_metric([r["failure_class"]], float(r["repairs"]))
        yield mean
        yield repairs

        nodes = _gauge("breakfix_nodes", "Nodes by current lifecycle state", ["state"])
        for r in self._rows(sql.NODES_BY_STATE):
            nodes.add_metric([r["state"]], float(r["nodes"]))
        yield nodes

        removed = _gauge(
            "breakfix_capacity_removed_gpus",
            "GPUs automation has out of service now (Quarantined/Repairing/Validating)",
            ["pool"],
        )
        pool_gpus = _gauge("breakfix_pool_gpus", "GPUs per pool, from the latest inventory", ["pool"])
        for r in self._rows(sql.CAPACITY_REMOVED):
            removed.add_metric([r["pool"]], float(r["removed_gpus"]))
            pool_gpus.add_metric([r["pool"]], float(r["pool_gpus"]))
        yield removed
        yield pool_gpus

        offenders = run_saved(s, "repeat_offenders", since=since, min_quarantines=MIN_QUARANTINES).rows
        repeat = _gauge(
            "breakfix_repeat_offender_nodes", f"Nodes quarantined at least {MIN_QUARANTINES} times"
        )
        repeat.add_metric([], float(len(offenders)))
        yield repeat
