"""SLURM collector: poll ``sinfo --json`` / ``squeue --json`` into node.condition, scheduler.state and
node.inventory.

A node's SLURM state becomes the ``SlurmState`` condition: ``True`` when the node can take work,
``False`` when it is DOWN, DRAIN(ed/ing), FAIL or not responding; the reason text, who set it and
when are kept, because the guard must never lift a drain an operator set (reason ownership). Only
changes are published. Commands run through an injectable runner with a timeout: a hung slurmctld
must cost one missed round, not a stuck collector.

JSON output needs SLURM >= 21.08 (Debian's 22.05 answers openapi v0.0.38); every document shape
since is read by :mod:`actuators.slurm.nodes` (flags in ``state`` from 23.02, time objects from
23.11). Where ``sinfo --json`` fails (older SLURM, or no JSON plugin), the collector falls back to
``scontrol show node -o`` and ``squeue --noheader --format=%T|%r`` text, says so once, and stays there.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from actuators.slurm.node_text import parse_show_node
from actuators.slurm.nodes import state_of, time_of
from agents.collect.base import CollectorUnavailable, Event
from agents.collect.inventory import InventoryConfig, inventory_event
from streams.kafka.producer import build_event

log = logging.getLogger(__name__)

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


def condition_of(node: Mapping[str, Any]) -> dict[str, Any]:
    """The SlurmState node.condition data for one node document (JSON of any release, or text).

    >>> c = condition_of({"state": ["MIXED", "DRAIN"], "reason": "bad DIMM"})
    >>> c["status"], c["reason"]
    ('False', 'MIXED+DRAIN')
    """
    base, flags = state_of(dict(node))
    available = base not in _UNAVAILABLE and not (flags & _UNAVAILABLE)
    reason = str(node.get("reason") or "")
    who = str(node.get("reason_set_by_user") or "")
    changed = time_of(node.get("reason_changed_at"))
    when = None if changed is None or not reason else datetime.fromtimestamp(changed, UTC).isoformat()
    message = reason
    if reason and who:
        message += f" (set by {who}"
        if when is not None:
            message += f" at {when}"
        message += ")"
    return {
        "condition": CONDITION,
        "status": "True" if available else "False",
        "reason": "+".join([base, *sorted(flags)]),
        "message": message,
        "slurm_reason": reason,
        "reason_set_by": who or None,
        "reason_time": when,
    }


def jobs_from_text(text: str) -> list[dict[str, Any]]:
    """``squeue --noheader --format=%T|%r`` lines → the job fields read from ``squeue --json``; the
    text adds detail after a comma (``ReqNodeNotAvail, UnavailableNodes:gpu02``) that JSON keeps apart.

    >>> jobs = jobs_from_text("PENDING|ReqNodeNotAvail, UnavailableNodes:gpu02\\nRUNNING|")
    >>> [j["state_reason"] for j in jobs]
    ['ReqNodeNotAvail', 'None']
    """
    out = []
    for line in text.splitlines():
        state, _, reason = line.strip().partition("|")
        if state:
            out.append({"job_state": state, "state_reason": reason.split(",")[0].strip() or "None"})
    return out


class _NoJson(RuntimeError):
    """The command gave no JSON document (not supported here); the text form may still work."""


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
        self.text_mode = False
        """True once ``sinfo --json`` failed and ``scontrol show node`` text answered instead."""

    def _json(self, argv: Sequence[str]) -> dict[str, Any]:
        try:
            out = json.loads(self.runner(argv, self.timeout_s))
        except (RuntimeError, ValueError) as err:
            raise _NoJson(str(err)) from err
        if not isinstance(out, dict):
            raise _NoJson(f"{argv[0]} --json did not return an object")
        for problem in out.get("errors") or []:
            raise RuntimeError(f"{argv[0]}: {problem}")
        return out

    def _text_round(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        nodes = parse_show_node(self.runner(["scontrol", "show", "node", "-o"], self.timeout_s))["nodes"]
        jobs = jobs_from_text(self.runner(["squeue", "--noheader", "--format=%T|%r"], self.timeout_s))
        return nodes, jobs

    def _read(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Nodes and jobs from JSON, or from text where this SLURM gives no JSON."""
        if self.text_mode:
            return self._text_round()
        try:
            nodes = self._json(["sinfo", "--json"]).get("nodes") or []
            jobs = self._json(["squeue", "--json"]).get("jobs") or []
        except _NoJson as err:
            try:
                found = self._text_round()
            except (RuntimeError, ValueError, KeyError):
                raise RuntimeError(f"SLURM gave neither JSON ({err}) nor scontrol text") from err
            log.warning("SLURM answered no JSON (%s): reading `scontrol show node -o` text from now on", err)
            self.text_mode = True
            return found
        return nodes, jobs

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
        nodes, jobs = self._read()
        for node in nodes:
            yield from self._node_events(node)
        yield self._cluster_state(jobs)

    def nodes(self) -> list[str]:
        return sorted(self._conditions)

    def close(self) -> None:
        return None
