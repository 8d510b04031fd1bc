"""node.inventory from a collector's view: pool, rack and SKU from labels or a small config file.

The guard's headroom and blast-radius rules group nodes by pool, rack and SKU, so every collector
that learns a node's GPUs or labels states them. Where they come from differs per site: Kubernetes
labels, SLURM partitions/features, or a YAML file for bare metal; the precedence is per-node override
in the file, then the node's labels, then the file's defaults.

Example ``inventory.yaml``::

    pool: training
    rack_label: topology.kubernetes.io/zone
    nodes:
      gpu01: {rack: r12}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from streams.kafka.producer import build_event


class NodePlacement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str | None = None
    rack: str | None = None
    sku: str | None = None


class InventoryConfig(BaseModel):
    """Defaults, the label keys to read, and per-node overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str = "default"
    rack: str = "unknown"
    sku: str = "unknown"
    pool_label: str = "breakfix.io/pool"
    rack_label: str = "breakfix.io/rack"
    sku_label: str = "nvidia.com/gpu.product"
    nodes: dict[str, NodePlacement] = {}

    @classmethod
    def load(cls, path: str | Path | None) -> InventoryConfig:
        """Read a YAML file (``None``: defaults). Unknown keys are refused with their name."""
        if path is None:
            return cls()
        raw = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(raw)

    def placement(
        self, node: str, labels: Mapping[str, str], sku_hint: str | None = None
    ) -> tuple[str, str, str]:
        """(pool, rack, sku) for one node; ``sku_hint`` (e.g. the GPU name NVML reports) beats the default.

        >>> cfg = InventoryConfig(nodes={"gpu01": NodePlacement(rack="r1")})
        >>> cfg.placement("gpu01", {"breakfix.io/pool": "infer", "nvidia.com/gpu.product": "H200"})
        ('infer', 'r1', 'H200')
        """
        over = self.nodes.get(node, NodePlacement())
        pool = over.pool or labels.get(self.pool_label) or self.pool
        rack = over.rack or labels.get(self.rack_label) or self.rack
        sku = over.sku or labels.get(self.sku_label) or sku_hint or self.sku
        return pool, rack, sku


def inventory_event(
    source: str,
    node: str,
    cfg: InventoryConfig,
    gpus: int,
    gpu_bus_ids: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    sku_hint: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A node.inventory envelope; ``extra`` carries source-specific detail (driver version, GPU name)."""
    labels = dict(labels or {})
    pool, rack, sku = cfg.placement(node, labels, sku_hint)
    data: dict[str, Any] = {"pool": pool, "rack": rack, "sku": sku, "gpus": gpus, "labels": labels, **extra}
    if gpu_bus_ids is not None:
        data["gpu_bus_ids"] = list(gpu_bus_ids)
    return build_event("node.inventory", source, node, data)
