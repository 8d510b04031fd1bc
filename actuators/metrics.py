"""Process metrics of the actuator side: how long each workflow step takes, by playbook, step and
outcome. Registered in prometheus-client's default registry and served by streams.metrics.serve in
the actuator stage, the only process that runs workflows (the HTTP API runs none)."""

from __future__ import annotations

from prometheus_client import Histogram

from actuators.playbooks import Catalog

STEP_SECONDS = Histogram(
    "breakfix_workflow_step_seconds",
    "Wall time of one workflow step (all attempts), by playbook and step",
    ["playbook", "step"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)


def initialise(catalog: Catalog) -> None:
    """One zero-valued series per (playbook, step) of ``catalog``, present from the first scrape: a
    series that appears only once a step ran cannot tell "never ran" from "not scraped"."""
    for pb in catalog.playbooks.values():
        for step in [*pb.steps, *pb.rollback]:
            STEP_SECONDS.labels(pb.name, step.name)
