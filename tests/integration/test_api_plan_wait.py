"""A plan's step the guard holds for capacity waits its turn instead of failing the plan.

Two serving nodes of one rack, a policy of one node per rack in flight (the shipped default), and a
plan executed two at a time: the guard lets the first leave, holds the second (its decision says
what holds the slot), and releases it once the first has run and returned to service. The API's plan
driver shows the held step as waiting and runs the plan to success, one node after the other. Real
parts as in tests/integration/test_api_plans.py (Tansu, chdb, the real guard and workflow engine).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policy.model import Policy
from schemas.common import NodeState
from schemas.proposal import Placement, Registration
from store.base import Store
from store.chdb_backend import open_chdb
from store.migrate import migrate
from store.rows import COLUMNS, group_by_table, model_rows
from streams.kafka.embedded_broker import EmbeddedBroker
from tests.builders import inventory
from tests.fakes.kube_apiserver import KubeApiServer
from tests.fixtures import api as fx
from tests.integration.test_api_plans import approve, execute, plan, wait_workflow

pytestmark = pytest.mark.integration
BATCH = {"batch-node-1": "r5", "batch-node-2": "r5", "batch-node-3": "r6", "batch-node-4": "r6"}


@pytest.fixture
def fleet(chdb_path: Path) -> Iterator[Store]:
    """The seeded fleet plus pool ``batch``: four Healthy nodes, two per rack."""
    store = open_chdb(chdb_path, f"api_wait_{uuid.uuid4().hex[:8]}")
    migrate(store)
    fx.seed_fleet(store)
    rows = [r for n, rack in BATCH.items() for r in model_rows(inventory(n, rack=rack, pool="batch"))]
    for table, table_rows in group_by_table(rows).items():
        store.insert(table, COLUMNS[table], table_rows)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


def one_per_rack() -> Policy:
    base = fx.test_policy()
    return base.model_copy(
        update={
            "headroom": base.headroom.model_copy(update={"pools": {**base.headroom.pools, "batch": 0.25}}),
            "concurrency": base.concurrency.model_copy(update={"per_rack": 1, "per_pool": 4, "per_sku": 8}),
        }
    )


def test_two_serving_nodes_of_one_rack_run_one_after_the_other(
    fleet: Store, tansu: EmbeddedBroker, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with KubeApiServer() as kube:
        fx.fleet_kube(kube)
        for node in BATCH:
            kube.add_node(node, labels={"pool": "batch"})
        with fx.running_api(
            fleet, tansu.url, tmp_path, fx.new_topics(), kube, fx.Clock(), one_per_rack()
        ) as api:
            with api.pipeline.lock:  # the guard's record of pool batch, as the node stage registers it
                for node, rack in BATCH.items():
                    at = Placement(pool="batch", rack=rack, sku="H100", gpus=8)
                    api.pipeline.guard.step(
                        api.pipeline.state, Registration(node=node, time=now, placement=at)
                    )
            p = plan(
                api,
                pool="batch",
                failure_class="node_os",
                action="reboot",
                nodes=["batch-node-1", "batch-node-2"],
            )
            token = approve(api, p["id"]).json()["approval_token"]
            started = execute(api, p["id"], approval_token=token, concurrency=2)
            assert started.status_code == 200, started.text
            wf = wait_workflow(api, started.json()["workflow_id"], timeout_s=90)
            decisions = list(api.pipeline.decisions)

    assert wf["status"] == "succeeded", wf
    assert {n: o["status"] for n, o in wf["nodes"].items()} == {
        "batch-node-1": "succeeded",
        "batch-node-2": "succeeded",
    }
    ids = [d.id for d in decisions]
    first, second = f"d-{wf['id']}.batch-node-1", f"d-{wf['id']}.batch-node-2"
    [held] = [d for d in decisions if d.id == second]
    assert held.held and not held.executable
    assert held.reasons[0].startswith("waiting for capacity (concurrency_rack)"), held.reasons
    assert "batch-node-1 (rack r5" in held.reasons[0]
    [released] = [d for d in decisions if d.id == second + ":released"]
    assert released.executable and released.plan_id == p["id"]
    returned = next(
        i for i, d in enumerate(decisions) if d.node == "batch-node-1" and d.to_state is NodeState.HEALTHY
    )
    # never two of rack r5 out at once: the second leaves only after the first returned
    assert ids.index(first) < ids.index(second) < returned < ids.index(released.id)
    assert wf["decisions"]["batch-node-2"]["id"] == released.id
