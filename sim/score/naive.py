"""The naive baseline: fixed condition → action tables, as many fleet tools ship them.

Any listed Xid, any ECC error count above zero, a temperature over a threshold, any NCCL timeout,
any NotReady, any tenant report: quarantine the node and drain it (reboot for the "reset me" Xids).
No corroboration, no attribution to jobs or changes, no blast radius, no hysteresis beyond a fixed
hold: a node returns after ``hold_s`` without a new trigger. Scored the same way as our decisions so
every figure gets a ratio beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.common import NodeState
from schemas.decision import ActionKind, Decision, Mode
from schemas.vocab import FailureClass
from sim.score.inputs import NodeInfo, inventory_of, iter_dicts

POLICY_VERSION = "naive-table-1"
TEMP_LIMIT_C = 85

# Xid → failure class, the table a naive tool keys on (application Xids included: it cannot tell).
_HW, _MEM, _NVL = FailureClass.GPU_HARDWARE, FailureClass.GPU_MEMORY, FailureClass.NVLINK_FABRIC
XID_TABLE: dict[int, str] = {
    13: _HW, 31: _HW, 32: _HW, 43: _HW, 45: _HW, 48: _MEM, 61: _HW, 62: _HW, 63: _MEM, 64: _MEM,
    68: _HW, 69: _HW, 74: _NVL, 79: _HW, 92: _MEM, 94: _MEM, 95: _MEM, 119: _HW, 120: _HW,
}  # fmt: skip
REBOOT_XIDS = frozenset({79, 119, 120})


@dataclass
class _NodeState:
    quarantined: bool = False
    last_trigger: float = 0.0


@dataclass
class NaiveResult:
    decisions: list[Decision] = field(default_factory=list)
    inventory: dict[str, NodeInfo] = field(default_factory=dict)
    events: int = 0


def triggers(obj: dict[str, Any]) -> Iterator[tuple[str, str, int | None, ActionKind]]:
    """(rule, failure class, GPU, action) for every table row this event matches."""
    etype, data = obj.get("type"), obj["data"]
    if etype == "gpu.sample":
        for g in data.get("gpus") or ():
            if not isinstance(g, dict):
                continue
            idx = g.get("index") if isinstance(g.get("index"), int) else None
            if _num(g.get("dbe_volatile")) > 0 or g.get("row_remap_failure") is True:
                yield "ecc_dbe", FailureClass.GPU_MEMORY, idx, ActionKind.DRAIN
            elif _num(g.get("sbe_volatile")) > 0:
                yield "ecc_sbe", FailureClass.GPU_MEMORY, idx, ActionKind.DRAIN
            if _num(g.get("temp_c")) > TEMP_LIMIT_C:
                yield "temp_over_limit", FailureClass.THERMAL_POWER, idx, ActionKind.DRAIN
            if _num(g.get("nvlink_crc_errors")) > 0:
                yield "nvlink_crc", FailureClass.NVLINK_FABRIC, idx, ActionKind.DRAIN
    elif etype == "gpu.xid":
        code = data.get("xid")
        if isinstance(code, int) and code in XID_TABLE:
            gpu = data.get("gpu") if isinstance(data.get("gpu"), int) else None
            action = ActionKind.REBOOT if code in REBOOT_XIDS else ActionKind.DRAIN
            yield f"xid_{code}", XID_TABLE[code], gpu, action
    elif etype == "workload.event" and data.get("kind") == "nccl_timeout":
        yield "nccl_timeout", FailureClass.NETWORK, None, ActionKind.DRAIN
    elif etype == "node.condition" and data.get("condition") == "Ready" and data.get("status") == "False":
        yield "not_ready", FailureClass.NODE_OS, None, ActionKind.DRAIN
    elif etype == "tenant.report":
        yield "tenant_report", FailureClass.TENANT_REPORT, None, ActionKind.DRAIN


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def _decision(
    obj: dict[str, Any],
    n: int,
    t: datetime,
    to: NodeState,
    rule: str,
    cls: str,
    gpu: int | None,
    action: ActionKind,
) -> Decision:
    back = to is NodeState.HEALTHY
    return Decision(
        id=f"naive-{obj['node']}-{n}",
        time=t,
        node=obj["node"],
        gpu=gpu,
        from_state=NodeState.QUARANTINED if back else NodeState.HEALTHY,
        to_state=to,
        trigger=f"naive:{rule}",
        failure_class=cls,
        confidence=1.0,
        action=ActionKind.RETURN_TO_SERVICE if back else action,
        mode=Mode.AUTO,
        executable=True,
        reasons=[f"table rule {rule}"],
        evidence=[str(obj.get("id", ""))],
        policy_version=POLICY_VERSION,
    )


def run_naive(path: str | Path, hold_s: float = 3600.0) -> NaiveResult:
    """One pass over the recording: the baseline's decisions, plus the inventory for capacity figures."""
    result = NaiveResult()
    states: dict[str, _NodeState] = {}
    for obj in iter_dicts(path):
        result.events += 1
        node = obj.get("node")
        if not isinstance(node, str):
            continue
        if obj.get("type") == "node.inventory":
            info = inventory_of(obj)
            if info is not None:
                result.inventory[node] = info
            continue
        try:
            t = datetime.fromisoformat(str(obj.get("time")))
        except ValueError:
            continue
        if t.tzinfo is None:
            continue
        st = states.setdefault(node, _NodeState())
        now = t.timestamp()
        hit = next(triggers(obj), None)
        if hit is not None:
            if not st.quarantined:
                rule, cls, _gpu, action = hit
                # Table-driven tools cordon the whole node, whatever GPU the row names.
                result.decisions.append(
                    _decision(obj, len(result.decisions), t, NodeState.QUARANTINED, rule, cls, None, action)
                )
                st.quarantined = True
            st.last_trigger = now
        elif st.quarantined and now - st.last_trigger >= hold_s:
            result.decisions.append(
                _decision(
                    obj,
                    len(result.decisions),
                    t,
                    NodeState.HEALTHY,
                    "hold_expired",
                    "none",
                    None,
                    ActionKind.NONE,
                )
            )
            st.quarantined = False
    return result
