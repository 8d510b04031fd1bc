"""SLURM collector: poll ``sinfo --json`` / ``squeue --json`` into node.condition, scheduler.state and
node.inventory.

A node's SLURM state becomes the ``SlurmState`` condition: ``True`` when the node can take work,
``False`` when it is DOWN, DRAIN(ed/ing), FAIL or not responding; the reason text, who set it and
when are kept, because the guard must never lift a drain an operator set (reason ownership). Only
changes are published. Commands run through an injectable runner with a timeout: a hung slurmctld
must cost one missed round, not a stuck collector. JSON output needs SLURM >= 21.08 (openapi v0.0.37+;
Debian's 22.05 answers v0.0.38).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from breakfix.collect.base import CollectorUnavailable, Event
from breakfix.collect.inventory import InventoryConfig, inventory_event
from streams.producer import build_event

SOURCE = "collect.slurm"
CONDITION = "SlurmState"

Runner = Callable[[Sequence[str], float], str]
"""(argv, timeout seconds) → stdout; raises on a non-zero exit or a timeout."""

_UNAVAILABLE = {
    "DOWN",
    "DRAIN",
    "DRAINED",
    "DRAINING",
    "FAIL",
    "FAILING",
    "NOT_RESPONDING",
    "INVAL",
    "UNKNOWN",
}
_GPU_GRES = re.compile(r"gpu(?::[^:(,]+)?:(\d+)")


def subprocess_runner(env: Mapping[str, str] | None = None) -> Runner:
    """Run SLURM client commands locally (``env`` carries e.g. SLURM_CONF)."""

    def run(argv: Sequence[str], timeout_s: float) -> str:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout_s, env=dict(env) if env else None
            )
        except FileNotFoundError as err:
            raise CollectorUnavailable(
                f"{argv[0]} not found: install the SLURM client (slurm-client)"
            ) from err
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[:500]}")
        return done.stdout

    return run


def gres_gpus(gres: str) -> int:
    """GPUs in a GRES string (``gpu:4``, ``gpu:h200:8(S:0-1)``, ``gpu:a100:2,gpu:h100:4``).

    >>> gres_gpus("gpu:h200:8(S:0-1)"), gres_gpus("gpu:4"), gres_gpus("gpu:a100:2,gpu:h100:4"), gres_gpus("")
    (8, 4, 6, 0)
    """
    return sum(int(n) for n in _GPU_GRES.findall(gres or ""))


def node_state(node: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(base state, flags) upper case, from v0.0.38's ``state`` + ``state_flags``.

    >>> node_state({"state": "idle", "state_flags": ["DRAIN"]})
    ('IDLE', ['DRAIN'])
    """
    state = node.get("state")
    base = str(state[0] if isinstance(state, list) and state else state or "UNKNOWN").upper()
    return base, [str(f).upper() for f in node.get("state_flags") or []]


def condition_of(node: Mapping[str, Any]) -> dict[str, Any]:
    """The SlurmState node.condition data for one sinfo node."""
    base, flags = node_state(node)
    available = base not in _UNAVAILABLE and not (set(flags) & _UNAVAILABLE)
    reason = str(node.get("reason") or "")
    who = str(node.get("reason_set_by_user") or "")
    when = node.get("reason_changed_at")
    message = reason
    if reason and who:
        message += f" (set by {who}"
        if isinstance(when, int) and when > 0:
            message += f" at {datetime.fromtimestamp(when, UTC).isoformat()}"
        message += ")"
    return {
        "condition": CONDITION,
        "status": "True" if available else "False",
        "reason": "+".join([base, *flags]),
        "message": message,
        "slurm_reason": reason,
        "reason_set_by": who or None,
    }


class SlurmCollector:
    """Polls one SLURM cluster through its client commands."""

    name = "slurm"

    def __init__(
        self,
        runner: Runner | None = None,
        interval_s: float = 30.0,
        inventory: InventoryConfig | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        self.runner = runner or subprocess_runner()
        self.interval_s = interval_s
        self.inventory = inventory or InventoryConfig()
        self.timeout_s = timeout_s
        self._conditions: dict[str, tuple[str, str, str]] = {}
        self._allocatable: dict[str, int] = {}
        self._inventory: dict[str, tuple[Any, ...]] = {}

    def _json(self, argv: Sequence[str]) -> dict[str, Any]:
        out = json.loads(self.runner(argv, self.timeout_s))
        if not isinstance(out, dict):
            raise ValueError(f"{argv[0]} --json did not return an object")
        for err in out.get("errors") or []:
            raise RuntimeError(f"{argv[0]}: {err}")
        return out

    def _node_events(self, node: Mapping[str, Any]) -> Iterator[Event]:
        name = str(node["name"])
        cond = condition_of(node)
        gpus = gres_gpus(str(node.get("gres") or ""))
        partitions = [str(p) for p in node.get("partitions") or []]
        labels = {
            "slurm.partitions": ",".join(partitions),
            "slurm.features": str(node.get("active_features") or node.get("features") or ""),
            "slurm.gres": str(node.get("gres") or ""),
        }
        if partitions:
            labels.setdefault(self.inventory.pool_label, partitions[0])
        view = (gpus, tuple(sorted(labels.items())))
        if self._inventory.get(name) != view:
            self._inventory[name] = view
            yield inventory_event(SOURCE, name, self.inventory, gpus=gpus, labels=labels)
        key = (cond["status"], cond["reason"], cond["message"])
        if self._conditions.get(name) != key:
            self._conditions[name] = key
            yield build_event("node.condition", SOURCE, name, cond)
        allocatable = gpus if cond["status"] == "True" else 0
        if self._allocatable.get(name) != allocatable:
            self._allocatable[name] = allocatable
            data = {"pending_pods": 0, "allocatable_gpus": allocatable}
            yield build_event("scheduler.state", SOURCE, name, data)

    def _cluster_state(self, jobs: list[dict[str, Any]]) -> Event:
        pending = [j for j in jobs if str(j.get("job_state", "")).upper() == "PENDING"]
        reasons: Counter[str] = Counter(str(j.get("state_reason") or "None") for j in pending)
        preempted = sum(1 for j in jobs if str(j.get("job_state", "")).upper() == "PREEMPTED")
        data = {
            "pending_pods": len(pending),
            "unschedulable": dict(reasons),
            "evictions": preempted,
            "allocatable_gpus": sum(self._allocatable.values()),
        }
        return build_event("scheduler.state", SOURCE, None, data)

    def poll(self, deadline: float) -> Iterator[Event]:
        nodes = self._json(["sinfo", "--json"]).get("nodes") or []
        jobs = self._json(["squeue", "--json"]).get("jobs") or []
        for node in nodes:
            yield from self._node_events(node)
        yield self._cluster_state(jobs)

    def nodes(self) -> list[str]:
        return sorted(self._conditions)

    def close(self) -> None:
        return None
