"""Small builders for typed events in tests (valid by construction through the real parser)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from schemas.events import Envelope
from schemas.parse import validate_event_dict

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
_ids = itertools.count()
BUS = [
    "0000:18:00",
    "0000:2a:00",
    "0000:3a:00",
    "0000:5d:00",
    "0000:9a:00",
    "0000:ab:00",
    "0000:ba:00",
    "0000:db:00",
]


def ev(type_: str, node: str | None, t: float, data: dict[str, Any], source: str = "test") -> Envelope:
    obj: dict[str, Any] = {
        "id": f"t{next(_ids)}",
        "type": type_,
        "source": source,
        "time": datetime.fromtimestamp(T0 + t, UTC).isoformat(),
        "data": data,
    }
    if node is not None:
        obj["node"] = node
    return validate_event_dict(obj)


def inventory(
    node: str,
    rack: str = "r1",
    pool: str = "p1",
    sku: str = "H100",
    t: float = 0,
    labels: dict[str, str] | None = None,
) -> Envelope:
    return ev(
        "node.inventory",
        node,
        t,
        {"pool": pool, "rack": rack, "sku": sku, "gpus": 8, "gpu_bus_ids": BUS, "labels": labels or {}},
    )


def sample(node: str, t: float, **per_gpu: Any) -> Envelope:
    gpus = []
    for i in range(8):
        g: dict[str, Any] = {
            "index": i,
            "temp_c": 55.0,
            "power_w": 400.0,
            "util": 90.0,
            "sbe_volatile": 0,
            "dbe_volatile": 0,
            "pcie_replay": 0,
            "nvlink_crc_errors": 0,
        }
        g.update(per_gpu.get(f"g{i}", {}))
        gpus.append(g)
    return ev("gpu.sample", node, t, {"gpus": gpus})


def xid(node: str, t: float, code: int, gpu: int = 0, **extra: Any) -> Envelope:
    return ev("gpu.xid", node, t, {"gpu": gpu, "xid": code, **extra})
