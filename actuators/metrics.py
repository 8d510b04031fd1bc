"""Process metrics of the actuator side: how long each workflow step takes, by playbook, step and
outcome. Registered in prometheus-client's default registry (served by streams.metrics.serve in the
actuator stage, or by the HTTP API's /metrics)."""

from __future__ import annotations

from prometheus_client import Histogram

STEP_SECONDS = Histogram(
    "breakfix_workflow_step_seconds",
    "Wall time of one workflow step (all attempts), by playbook and step",
    ["playbook", "step"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
