"""The figures ``breakfix score`` prints, computed from labels and decisions (pure, no I/O).

Definitions (also in docs/operate/simulate-and-score.md):
* quarantine: a decision with ``to_state`` Quarantined (any mode: it is the policy's judgement).
  True when its node (and GPU, if both name one) has a ``truth="fault"`` label active around the
  decision time (see ``matching``); precision is grouped by the decision's failure class.
* recall: share of fault labels expecting a quarantine that got one in their window; grouped by the
  label's class, and separately over decisive hardware faults. A quarantine the guard held (capacity,
  concurrency, breaker, incident freeze) is not one: those faults are counted apart as
  ``missed_held`` (detected, proposed, held), so a guardrail's cost stays visible.
* wrongful destructive action: reboot/drain/reimage/rma, executable or in recommend mode, on a node
  with no active fault label.
* time to detect: label start → first Suspect/Quarantined decision in its window.
* MTTR: label start → first Healthy decision after that detection.
* node-days out of Healthy: per node, the time between a decision that moved it out of Healthy and
  the one that brought it back (or the end of the run), summed; nodes that left Healthy at all.
* incidents opened: distinct fleet incidents; job findings (one per crashed job) apart.
* decisive faults frozen: decisive fault labels whose quarantine an incident's freeze held (must be 0).
* time to first action: label start → its first quarantine that was not held.
* capacity: GPUs out of service per pool (Quarantined/Repairing/Validating/Escalated, per GPU where a
  decision names one), from non-shadow decisions; its maximum against the headroom fraction.
* storms and changes: per scope, incidents (fleet_incident, or a job-level finding for a crashed job)
  or rollbacks vs quarantines and drains.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from policy.lifecycle import JOB_FAULT
from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from schemas.vocab import QUARANTINE_TRIGGERS
from sim.score.inputs import NodeInfo
from sim.score.matching import LabelIndex, Tolerance
from sim.simulator.labels import HARDWARE_CLASSES, Label

DESTRUCTIVE = frozenset({ActionKind.REBOOT, ActionKind.DRAIN, ActionKind.REIMAGE, ActionKind.RMA})
DETECTED = frozenset({NodeState.SUSPECT, NodeState.QUARANTINED})
OUT_OF_SERVICE = frozenset(
    {NodeState.QUARANTINED, NodeState.REPAIRING, NodeState.VALIDATING, NodeState.ESCALATED}
)
IN_SERVICE = frozenset({NodeState.HEALTHY, NodeState.SUSPECT})


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _dist(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 1),
        "median": round(statistics.median(values), 1),
        "p95": round(p95, 1),
        "max": round(ordered[-1], 1),
    }


def _job_finding(d: Decision, remedy: ActionKind) -> bool:
    """A job's crash is its own incident: one job-level finding that every node of the job joins."""
    return remedy is ActionKind.FLEET_INCIDENT and d.trigger == JOB_FAULT


def _acts(d: Decision) -> bool:
    """Would this decision change the fleet (executed, or recommended to a person who follows it)?"""
    return not d.stale and (d.executable or d.mode is Mode.RECOMMEND)


@dataclass
class Scorer:
    labels: list[Label]
    decisions: list[Decision]
    inventory: dict[str, NodeInfo] | None = None
    min_healthy: float = 0.9
    tol: Tolerance | None = None

    def __post_init__(self) -> None:
        self.index = LabelIndex(self.labels, self.tol)
        self.decisions = sorted(self.decisions, key=lambda d: d.time)
        self.by_node: dict[str, list[Decision]] = defaultdict(list)
        for d in self.decisions:
            self.by_node[d.node].append(d)

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {"decisions": len(self.decisions)}
        out.update(self._quarantines())
        out["wrongful_destructive"] = sum(
            1 for d in self.decisions if d.action in DESTRUCTIVE and _acts(d) and not self.index.matching(d)
        )
        out.update(self._detection())
        out.update(self._calibration())
        out["capacity"] = self._capacity()
        out["storms"] = self._scoped("storm", ActionKind.FLEET_INCIDENT)
        out["changes"] = self._scoped("change", ActionKind.ROLLBACK_CHANGE)
        out["storm_incidents"] = sum(s["incidents"] for s in out["storms"])
        out["storm_quarantines"] = sum(s["quarantines"] for s in out["storms"])
        out["storm_drains"] = sum(s["drains"] for s in out["storms"])
        cap = out["capacity"]
        out["pools_below_headroom"] = sum(1 for p in cap.values() if p["below_headroom"]) if cap else None
        return out

    def _quarantines(self) -> dict[str, Any]:
        per_class: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        true_q = false_q = noise_q = silent_q = 0
        quarantines = [d for d in self.decisions if d.to_state is NodeState.QUARANTINED]
        for d in quarantines:
            hit = bool(self.index.matching(d))
            row = per_class[d.failure_class]
            row["quarantines"] += 1
            row["true"] += hit
            true_q += hit
            false_q += not hit
            noise_q += bool(self.index.matching(d, "noise"))
            silent_q += bool(self.index.matching(d, "silent"))
        wanted = [lb for lb in self.labels if lb.truth == "fault" and lb.expected == "quarantine"]
        caught = {lb.id for lb in wanted if self._caught(lb)}
        for lb in wanted:
            row = per_class[lb.failure_class]
            row["faults"] += 1
            row["caught"] += lb.id in caught
        held = [lb for lb in wanted if lb.id not in caught and self._held(lb)]
        decisive_hw = [lb for lb in wanted if lb.decisive and lb.failure_class in HARDWARE_CLASSES]
        classes = {
            cls: {
                "quarantines": row["quarantines"],
                "true": row["true"],
                "precision": _ratio(row["true"], row["quarantines"]),
                "faults": row["faults"],
                "caught": row["caught"],
                "recall": _ratio(row["caught"], row["faults"]),
            }
            for cls, row in sorted(per_class.items())
        }
        return {
            "quarantines": len(quarantines),
            "true_quarantines": true_q,
            "false_quarantines": false_q,
            "noise_quarantines": noise_q,
            "silent_quarantines": silent_q,
            "precision": _ratio(true_q, len(quarantines)),
            "faults": len(wanted),
            "recall": _ratio(len(caught), len(wanted)),
            "recall_decisive_hw": _ratio(sum(lb.id in caught for lb in decisive_hw), len(decisive_hw)),
            "missed_held": len(held),
            "missed_held_ids": sorted(lb.id for lb in held),
            "per_class": classes,
        }

    def _caught(self, lb: Label) -> bool:
        """Quarantined inside the label's window, or already out of service when the fault began."""
        earlier = [d for d in self.by_node.get(lb.node, ()) if d.time.timestamp() < lb.start.timestamp()]
        if earlier and earlier[-1].to_state in OUT_OF_SERVICE and earlier[-1].gpu in (None, lb.gpu):
            return True
        return any(
            d.to_state is NodeState.QUARANTINED and self.index.in_window(lb, d)
            for d in self.by_node.get(lb.node, ())
        )

    def _held(self, lb: Label) -> bool:
        """Detected and proposed for quarantine, but a guardrail (capacity, concurrency, breaker,
        incident) held it: shown apart, never counted as caught - the node stayed in service."""
        return any(
            d.held and d.trigger in QUARANTINE_TRIGGERS and self.index.in_window(lb, d)
            for d in self.by_node.get(lb.node, ())
        )

    def _detection(self) -> dict[str, Any]:
        ttd: list[float] = []
        mttr: list[float] = []
        unresolved = 0
        for lb in self.labels:
            if lb.truth != "fault" or lb.expected != "quarantine":
                continue
            start = lb.start.timestamp()
            found = next(
                (
                    d
                    for d in self.by_node.get(lb.node, ())
                    if d.to_state in DETECTED and self.index.in_window(lb, d)
                ),
                None,
            )
            if found is None:
                continue
            ttd.append(max(0.0, found.time.timestamp() - start))
            healthy = next(
                (
                    d
                    for d in self.by_node.get(lb.node, ())
                    if d.to_state is NodeState.HEALTHY
                    and d.time > found.time
                    and (d.gpu is None or d.gpu == found.gpu)
                ),
                None,
            )
            if healthy is None:
                unresolved += 1
            else:
                mttr.append(healthy.time.timestamp() - start)
        return {"ttd_s": _dist(ttd), "mttr_s": {**_dist(mttr), "unresolved": unresolved}}

    def _calibration(self) -> dict[str, Any]:
        """What a fleet's operators live with: node-days spent out of Healthy (Suspect storms included),
        incidents opened, decisive faults an incident froze (must be 0), and fault → first action."""
        horizon = max(
            [d.time.timestamp() for d in self.decisions]
            + [(lb.end or lb.start).timestamp() for lb in self.labels],
            default=0.0,
        )
        out_s = 0.0
        nodes_left = 0
        for decisions in self.by_node.values():
            since: float | None = None
            left = False
            for d in decisions:
                if d.held or d.action is ActionKind.FLEET_INCIDENT or d.to_state is d.from_state:
                    continue
                t = d.time.timestamp()
                if d.to_state is NodeState.HEALTHY:
                    if since is not None:
                        out_s += t - since
                    since = None
                elif since is None:
                    since, left = t, True
            if since is not None:
                out_s += horizon - since
            nodes_left += left
        incidents = {d.incident_id or d.id for d in self.decisions if d.action is ActionKind.FLEET_INCIDENT}
        wanted = [lb for lb in self.labels if lb.truth == "fault" and lb.expected == "quarantine"]
        frozen = [lb.id for lb in wanted if lb.decisive and self._frozen(lb)]
        first_action: list[float] = []
        for lb in wanted:
            acted = next(
                (
                    d
                    for d in self.by_node.get(lb.node, ())
                    if d.to_state is NodeState.QUARANTINED and not d.held and self.index.in_window(lb, d)
                ),
                None,
            )
            if acted is not None:
                first_action.append(max(0.0, acted.time.timestamp() - lb.start.timestamp()))
        return {
            "node_days_out_of_healthy": round(out_s / 86_400, 3),
            "nodes_left_healthy": nodes_left,
            "incidents_opened": len(incidents),
            "job_findings": len({d.incident_id for d in self.decisions if d.trigger == JOB_FAULT}),
            "decisive_frozen": len(frozen),
            "decisive_frozen_ids": frozen,
            "time_to_first_action_s": _dist(first_action),
        }

    def _frozen(self, lb: Label) -> bool:
        """A quarantine proposal for this fault that an incident's freeze held."""
        return any(
            d.held
            and d.incident_id is not None
            and any(c.name == "blast_radius" and not c.passed for c in d.guard)
            and self.index.in_window(lb, d)
            for d in self.by_node.get(lb.node, ())
        )

    def _capacity(self) -> dict[str, dict[str, Any]]:
        if self.inventory is None:
            return {}
        totals: dict[str, int] = defaultdict(int)
        for node_info in self.inventory.values():
            totals[node_info.pool] += node_info.gpus
        out_gpus: dict[str, set[int]] = {}
        removed: dict[str, int] = defaultdict(int)
        peak: dict[str, int] = defaultdict(int)
        for d in self.decisions:
            info = self.inventory.get(d.node)
            if info is None or d.mode is Mode.SHADOW:
                continue
            before = len(out_gpus.get(d.node, ()))
            gone = out_gpus.setdefault(d.node, set())
            everything = set(range(info.gpus))
            if d.to_state in OUT_OF_SERVICE:
                gone |= {d.gpu} if d.gpu is not None else everything
            elif d.to_state in IN_SERVICE:
                gone -= {d.gpu} if d.gpu is not None else everything
            removed[info.pool] += len(gone) - before
            peak[info.pool] = max(peak[info.pool], removed[info.pool])
        result = {}
        for pool, total in sorted(totals.items()):
            frac = peak[pool] / total if total else 0.0
            result[pool] = {
                "gpus": total,
                "max_removed": peak[pool],
                "max_removed_frac": round(frac, 4),
                "min_healthy_frac": round(1 - frac, 4),
                "below_headroom": (1 - frac) < self.min_healthy,
            }
        return result

    def _scoped(self, truth: str, remedy: ActionKind) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str], list[Label]] = defaultdict(list)
        for lb in self.labels:
            if lb.truth == truth:
                scope = lb.scope or {}
                key = next((f"{k}={scope[k]}" for k in ("job", "leaf", "pool") if k in scope), lb.node)
                groups[(lb.scenario, key)].append(lb)
        out = []
        for (scenario, key), members in sorted(groups.items()):
            nodes = {lb.node for lb in members}
            lo = min(lb.start.timestamp() for lb in members) - self.index.tol.before_s
            hi = max((lb.end or lb.start).timestamp() for lb in members) + self.index.tol.after_s
            inside = [d for d in self.decisions if d.node in nodes and lo <= d.time.timestamp() <= hi]
            remedies = {
                d.incident_id or d.id for d in inside if d.action is remedy or _job_finding(d, remedy)
            }
            out.append(
                {
                    "scenario": scenario,
                    "scope": key,
                    "nodes": len(nodes),
                    "incidents" if remedy is ActionKind.FLEET_INCIDENT else "rollbacks": len(remedies),
                    "quarantines": sum(1 for d in inside if d.to_state is NodeState.QUARANTINED),
                    "drains": sum(1 for d in inside if d.action is ActionKind.DRAIN and _acts(d)),
                }
            )
        return out


def score(
    labels: Iterable[Label],
    decisions: Iterable[Decision],
    inventory: dict[str, NodeInfo] | None = None,
    min_healthy: float = 0.9,
) -> dict[str, Any]:
    return Scorer(list(labels), list(decisions), inventory, min_healthy).figures()
