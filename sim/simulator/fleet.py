"""Fleet layout: pools of one SKU each, racks of ~16 nodes, two racks per leaf switch, 8 GPUs a node.

The layout is a pure function of the node count, so every scenario can name pools, racks and leaves
that exist whatever ``--nodes`` is; bus ids follow the SKU's baseboard so that kernel lines name the
PCI address the inventory maps back to a GPU index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GPUS_PER_NODE = 8
RACK_SIZE = 16
RACKS_PER_LEAF = 2


@dataclass(frozen=True)
class Sku:
    name: str
    bus_ids: tuple[str, ...]
    idle_w: float
    max_w: float
    idle_c: float
    """Idle temperature; under full load a GPU runs ``load_c`` degrees hotter."""
    load_c: float
    driver: str


H100 = Sku(
    "H100-SXM5-80GB",
    (
        "0000:18:00",
        "0000:2a:00",
        "0000:3a:00",
        "0000:5d:00",
        "0000:9a:00",
        "0000:ab:00",
        "0000:ba:00",
        "0000:db:00",
    ),
    idle_w=70.0,
    max_w=700.0,
    idle_c=33.0,
    load_c=34.0,
    driver="550.90.07",
)
H200 = Sku(
    "H200-SXM5-141GB",
    (
        "0000:19:00",
        "0000:3b:00",
        "0000:4c:00",
        "0000:5d:00",
        "0000:9b:00",
        "0000:bb:00",
        "0000:cb:00",
        "0000:db:00",
    ),
    idle_w=75.0,
    max_w=700.0,
    idle_c=32.0,
    load_c=36.0,
    driver="550.90.07",
)
A100 = Sku(
    "A100-SXM4-80GB",
    (
        "0000:07:00",
        "0000:0f:00",
        "0000:47:00",
        "0000:4e:00",
        "0000:87:00",
        "0000:90:00",
        "0000:b7:00",
        "0000:bd:00",
    ),
    idle_w=55.0,
    max_w=400.0,
    idle_c=30.0,
    load_c=32.0,
    driver="535.183.01",
)


@dataclass(frozen=True)
class PoolSpec:
    name: str
    share: float
    sku: Sku
    workload: str
    """``training`` runs flat-out multi-node jobs; ``inference`` follows the day (diurnal load)."""


POOLS: tuple[PoolSpec, ...] = (
    PoolSpec("train-a", 0.5, H100, "training"),
    PoolSpec("train-b", 0.3, H200, "training"),
    PoolSpec("infer-a", 0.2, A100, "inference"),
)


@dataclass(frozen=True)
class Node:
    index: int
    name: str
    pool: str
    rack: str
    leaf: str
    sku: Sku
    workload: str
    job: str
    """The job (training) or deployment (inference) that runs on the node's GPUs."""

    def inventory(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "rack": self.rack,
            "sku": self.sku.name,
            "gpus": GPUS_PER_NODE,
            "gpu_bus_ids": list(self.sku.bus_ids),
            "labels": {
                "network.leaf": self.leaf,
                "nvidia.com/gpu.product": self.sku.name,
                "nvidia.com/cuda.driver.version": self.sku.driver,
                "topology.kubernetes.io/zone": "az1",
            },
        }


@dataclass
class Fleet:
    nodes: list[Node]
    by_name: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {n.name: n for n in self.nodes}

    def pools(self) -> list[str]:
        return sorted({n.pool for n in self.nodes})

    def in_pool(self, pool: str) -> list[Node]:
        return [n for n in self.nodes if n.pool == pool]

    def racks(self, pool: str | None = None) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            if pool is None or n.pool == pool:
                out.setdefault(n.rack, []).append(n)
        return out

    def leaves(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            out.setdefault(n.leaf, []).append(n)
        return out


def _pool_sizes(total: int) -> list[int]:
    sizes = [int(total * p.share) for p in POOLS]
    sizes[0] += total - sum(sizes)
    return sizes


def build_fleet(total: int) -> Fleet:
    """Nodes ``gpu-00000…`` laid out pool by pool; racks and leaves never span two pools.

    >>> f = build_fleet(100)
    >>> [len(f.in_pool(p)) for p in ("train-a", "train-b", "infer-a")]
    [50, 30, 20]
    >>> f.nodes[0].rack, f.nodes[0].leaf, f.nodes[16].rack, f.nodes[32].leaf
    ('r000', 'leaf-000', 'r001', 'leaf-001')
    """
    if total < 1:
        raise ValueError("a fleet needs at least one node")
    nodes: list[Node] = []
    rack_no = 0
    leaf_no = 0
    for spec, size in zip(POOLS, _pool_sizes(total), strict=True):
        for i in range(size):
            rack_in_pool = i // RACK_SIZE
            rack = f"r{rack_no + rack_in_pool:03d}"
            leaf = f"leaf-{leaf_no + rack_in_pool // RACKS_PER_LEAF:03d}"
            # Training jobs span four racks; an inference deployment spans one rack.
            span = 4 if spec.workload == "training" else 1
            job = f"{spec.name}-{'job' if span > 1 else 'svc'}-{rack_in_pool // span:02d}"
            idx = len(nodes)
            nodes.append(Node(idx, f"gpu-{idx:05d}", spec.name, rack, leaf, spec.sku, spec.workload, job))
        racks = -(-size // RACK_SIZE) if size else 0
        rack_no += racks
        leaf_no += -(-racks // RACKS_PER_LEAF) if racks else 0
    return Fleet(nodes)
