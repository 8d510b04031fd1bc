"""What the controller says about a node, parsed from ``sinfo --json`` and ``squeue --json`` (22.05+).

Pure parsing, no I/O, so the rules that decide ownership and job-awareness are unit-testable on
recorded controller output. Node documents differ by Slurm release and are read here once for every
caller: up to 22.05 (openapi v0.0.38) ``state`` is one base state and flags such as DRAIN are in
``state_flags``; from 23.02 ``state`` is a list holding the base state *and* the flags
(``["MIXED", "DRAIN"]``), and from 23.11 times such as ``reason_changed_at`` are objects
``{"set", "infinite", "number"}`` (slurm.schedmd.com/slurmrestd.html shows one).

The reason string is how ownership is proven: a drain is ours only when its reason starts with
:data:`actuators.base.REASON_PREFIX` (``breakfix:``), followed by the decision id. An operator's
drain, whatever it says, is never ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from actuators.base import REASON_PREFIX

# Job states that still hold the node's resources (a drain is DRAINING, not DRAINED, while any exists).
ACTIVE_JOB_STATES = frozenset({"RUNNING", "COMPLETING", "SUSPENDED", "CONFIGURING", "STAGE_OUT", "SIGNALING"})
REBOOT_FLAGS = frozenset({"REBOOT_REQUESTED", "REBOOT_ISSUED"})
MAX_REASON = 200
_GPU_GRES = re.compile(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)")


def reason_for(decision_id: str, why: str) -> str:
    """``breakfix: <decision id> <why>``: ours by prefix, traceable to the decision by its id."""
    text = " ".join(f"{REASON_PREFIX} {decision_id} {why}".split())
    return text[:MAX_REASON]


def decision_of(reason: str) -> str | None:
    """The decision id in one of our reasons, or None when the reason is not ours."""
    if not reason.startswith(REASON_PREFIX):
        return None
    rest = reason[len(REASON_PREFIX) :].split()
    return rest[0] if rest else None


# Slurm's base node states (NODE_STATE_BASE in slurm.h); everything else in a state list is a flag.
BASE_STATES = frozenset({"UNKNOWN", "DOWN", "IDLE", "ALLOCATED", "ERROR", "MIXED", "FUTURE"})


def state_of(node: dict[str, Any]) -> tuple[str, frozenset[str]]:
    """(base state, flags), upper case, from either node document shape.

    >>> state_of({"state": "idle", "state_flags": ["DRAIN"]})
    ('IDLE', frozenset({'DRAIN'}))
    >>> base, flags = state_of({"state": ["MIXED", "DRAIN", "REBOOT_REQUESTED"]})
    >>> base, sorted(flags)
    ('MIXED', ['DRAIN', 'REBOOT_REQUESTED'])
    """
    raw = node.get("state")
    words = [str(w).upper() for w in (raw if isinstance(raw, list) else [raw] if raw else [])]
    words += [str(f).upper() for f in node.get("state_flags") or ()]
    base = next((w for w in words if w in BASE_STATES), "UNKNOWN")
    return base, frozenset(w for w in words if w != base)


def time_of(value: Any) -> int | None:
    """Epoch seconds from a plain number (<= 23.02) or a ``{"set", "infinite", "number"}`` object;
    None when unset, infinite or zero (Slurm's "never").

    >>> time_of(1795465009), time_of({"set": True, "infinite": False, "number": 1769096589})
    (1795465009, 1769096589)
    >>> time_of({"set": False, "infinite": False, "number": 0}), time_of(0)
    (None, None)
    """
    if isinstance(value, dict):
        if not value.get("set") or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def gpu_count(gres: str) -> int:
    """GPUs in a GRES string such as ``gpu:4``, ``gpu:a100:8(S:0-1)`` or ``gpu:0``; 0 when none.

    >>> gpu_count("gpu:a100:8(S:0-1),nic:2")
    8
    """
    return sum(int(m.group(1)) for m in _GPU_GRES.finditer(gres or ""))


@dataclass(frozen=True)
class SlurmNode:
    name: str
    state: str
    """Base state, upper case: IDLE, MIXED, ALLOCATED, DOWN, ..."""
    flags: frozenset[str]
    """DRAIN, REBOOT_REQUESTED, REBOOT_ISSUED, NOT_RESPONDING, ..."""
    reason: str
    reason_set_by: str
    gpus: int
    gpus_used: int
    boot_time: int

    @property
    def drain_flag(self) -> bool:
        return "DRAIN" in self.flags

    @property
    def ours(self) -> bool:
        """Drained (or held) under one of our reasons; the only holds we ever lift."""
        return decision_of(self.reason) is not None

    @property
    def rebooting(self) -> bool:
        return bool(self.flags & REBOOT_FLAGS)

    def drain_phase(self, active_jobs: int) -> str:
        """``DRAINING`` while jobs still run on a drained node, ``DRAINED`` once none do, else ``-``."""
        if not self.drain_flag:
            return "-"
        busy = self.state in ("ALLOCATED", "MIXED") or "COMPLETING" in self.flags
        return "DRAINING" if active_jobs > 0 or busy else "DRAINED"

    def summary(self) -> str:
        return "+".join([self.state, *sorted(self.flags)])


def parse_nodes(doc: dict[str, Any]) -> dict[str, SlurmNode]:
    """``sinfo --json`` → nodes by name. Raises ValueError on a document that is not sinfo's."""
    if not isinstance(doc.get("nodes"), list):
        raise ValueError("sinfo --json output has no 'nodes' list")
    out: dict[str, SlurmNode] = {}
    for n in doc["nodes"]:
        state, flags = state_of(n)
        out[str(n["name"])] = SlurmNode(
            name=str(n["name"]),
            state=state,
            flags=flags,
            reason=str(n.get("reason") or ""),
            reason_set_by=str(n.get("reason_set_by_user") or ""),
            gpus=gpu_count(str(n.get("gres") or "")),
            gpus_used=gpu_count(str(n.get("gres_used") or "")),
            boot_time=time_of(n.get("boot_time")) or 0,
        )
    return out


def active_jobs_on(doc: dict[str, Any], node: str) -> list[int]:
    """Ids of jobs holding resources on ``node`` per ``squeue --json``.

    squeue 22.05 ignores ``-w`` with ``--json``, so the filter is ours: the exact node names in each
    job's ``job_resources.allocated_nodes`` (no hostlist expansion needed)."""
    if not isinstance(doc.get("jobs"), list):
        raise ValueError("squeue --json output has no 'jobs' list")
    ids = []
    for job in doc["jobs"]:
        if str(job.get("job_state", "")).upper() not in ACTIVE_JOB_STATES:
            continue
        allocated = (job.get("job_resources") or {}).get("allocated_nodes") or []
        if any(a.get("nodename") == node for a in allocated):
            ids.append(int(job["job_id"]))
    return ids
