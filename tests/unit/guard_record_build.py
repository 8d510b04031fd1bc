"""A ``GuardState`` with every field set, built the same way every time: the round-trip tests encode
it, and the old-format fixture (``guard_record_data/legacy_guard.pkl``) is its plain pickle."""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from policy.guard import GuardState, NodeInfo
from policy.levers import Approval, Levers
from schemas.common import FailureDomain, NodeState
from schemas.decision import ActionKind, Mode
from schemas.proposal import Placement, Proposal

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def placement(i: int) -> Placement:
    labels = {"network.leaf": f"leaf-{i % 4}", "zone": "b"} if i % 3 == 0 else {}
    return Placement(
        pool=f"pool-{i % 3}", rack=f"rack-{i // 4:03d}", sku="H100", gpus=8 - i % 2, labels=labels
    )


def proposal(i: int, to: NodeState = NodeState.QUARANTINED) -> Proposal:
    """A proposal with optional fields set on odd ``i`` and left at their defaults on even ones."""
    odd = i % 2 == 1
    tz = timezone(timedelta(hours=2)) if i % 5 == 4 else UTC  # an explicit offset must survive too
    return Proposal(
        id=f"gpu-{i:03d}:ev-{i}:confidence_over_threshold",
        time=(T0 + timedelta(seconds=i, microseconds=123_457 * i % 1_000_000)).astimezone(tz),
        node=f"gpu-{i:03d}",
        gpu=i % 8 if odd else None,
        from_state=NodeState.SUSPECT,
        to_state=to,
        trigger="confidence_over_threshold",
        failure_class="gpu_hardware",
        domain=FailureDomain.GPU_HARDWARE if odd else None,
        confidence=0.8 + i / 1000,
        action=ActionKind.REBOOT if odd else ActionKind.DRAIN,
        reasons=[f"xid.79 on gpu {i % 8} (w=0.9)", "ecc.dbe (w=0.5)"],
        evidence=[f"ev-{i}-{k}" for k in range(3)],
        evidence_time=T0 - timedelta(seconds=i),
        placement=placement(i),
        job="job-7" if odd else None,
        replay=i % 4 == 3,
    )


DECIDED = "gpu-005:ev-5:confidence_over_threshold"


def full_guard(nodes: int = 24) -> GuardState:
    t = T0.timestamp()
    states = list(NodeState)
    g = GuardState(
        nodes={f"gpu-{i:03d}": NodeInfo(placement(i), states[i % len(states)]) for i in range(nodes)},
        clock=t + 0.25,
        levers=Levers(
            killswitch={"global": True, "pool:pool-1": True, "pool:pool-0": False},
            modes={"gpu_hardware": Mode.AUTO, "thermal": Mode.SHADOW, "network": Mode.RECOMMEND},
            approvals={
                "node:gpu-003": {
                    "ann": Approval(
                        "c-1", "node:gpu-003", "ann", "operator", "gpu_hardware", "drain", t + 60.0
                    ),
                    "bob": Approval("c-2", "node:gpu-003", "bob", "admin", used=True),
                },
                f"decision:{DECIDED}": {"ann": Approval("c-3", f"decision:{DECIDED}", "ann", "operator")},
            },
            emergency=True,
            excluded_pools={"pool-2"},
            excluded_nodes={"gpu-007"},
        ),
        breaker_open=True,
        quarantines=deque([t - 30.5, t - 10.0, t]),
        executions=deque([t - 3000.0, t - 1.5]),
        backlog=[proposal(i) for i in (1, 2)],
        waiting=[proposal(i) for i in (3, 4, 5, 9)],
        wait_started={"gpu-003": (t - 100.0, t - 5.0), "gpu-004": (t - 7.5, t - 7.5)},
        incidents={"rack:rack-001:gpu_hardware": ("inc-0123456789ab", t + 2400.0)},
        blast={
            "rack:rack-001:gpu_hardware": deque([(t - 5.0, "gpu-004"), (t - 1.0, "gpu-005")]),
            "pool:pool-0:x": deque(),
        },
        seen=OrderedDict.fromkeys(f"gpu-{i:03d}:ev-{i}:confidence_over_threshold" for i in range(12)),
    )
    return g


def comparable(g: GuardState) -> dict[str, Any]:
    """Every field by value, with the type of each container and the order of every ordered one
    (``OrderedDict == dict`` ignores order, ``deque == list`` is false but says nothing useful)."""
    out: dict[str, Any] = {}
    for name, v in vars(g).items():
        if name == "counts":
            continue  # derived from ``nodes``, never stored
        if isinstance(v, dict):
            v = [(k, (type(x).__name__, list(x)) if isinstance(x, deque) else x) for k, x in v.items()]
        elif isinstance(v, deque | list):
            v = list(v)
        out[name] = (type(getattr(g, name)).__name__, v)
    return out
