"""Fleet layout: pools, racks, leaves and bus ids are what scenarios and kernel lines rely on."""

from __future__ import annotations

from schemas.events import InventoryData
from sim.simulator.fleet import GPUS_PER_NODE, RACK_SIZE, build_fleet


def test_pools_skus_and_sizes() -> None:
    fleet = build_fleet(1000)
    sizes = {p: len(fleet.in_pool(p)) for p in fleet.pools()}
    assert sizes == {"train-a": 500, "train-b": 300, "infer-a": 200}
    skus = {p: {n.sku.name for n in fleet.in_pool(p)} for p in fleet.pools()}
    assert skus == {
        "train-a": {"H100-SXM5-80GB"},
        "train-b": {"H200-SXM5-141GB"},
        "infer-a": {"A100-SXM4-80GB"},
    }


def test_racks_hold_at_most_16_nodes_of_one_pool_and_leaves_span_two_racks() -> None:
    fleet = build_fleet(333)
    for rack, members in fleet.racks().items():
        assert len(members) <= RACK_SIZE, rack
        assert len({n.pool for n in members}) == 1, rack
    for leaf, members in fleet.leaves().items():
        assert 1 <= len({n.rack for n in members}) <= 2, leaf
        assert len({n.pool for n in members}) == 1, leaf


def test_inventory_validates_and_carries_leaf_and_bus_ids() -> None:
    node = build_fleet(50).nodes[17]
    inv = InventoryData.model_validate(node.inventory())
    assert inv.gpus == GPUS_PER_NODE
    assert inv.gpu_bus_ids is not None and len(set(inv.gpu_bus_ids)) == GPUS_PER_NODE
    assert inv.labels["network.leaf"] == node.leaf
