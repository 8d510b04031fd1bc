"""The API's own Prometheus series, present from the first scrape with zero values.

A series that appears only once something happened cannot tell "nothing happened" from "not
scraped": dashboards and alerts (``rate(...) == 0``) need it from start. So every label value the
API can produce is created at start: plan and workflow outcomes. The workflow-step histogram is the
actuator stage's (``actuators.metrics``): the API runs no step.
"""

from __future__ import annotations

from prometheus_client import Counter

PLAN_STATUSES = ("dry_run", "pending_approval", "approved", "executing")
WORKFLOW_OUTCOMES = ("started", "succeeded", "failed")

PLANS = Counter("breakfix_api_plans_total", "Repair plans created or moved, by status reached", ["status"])
WORKFLOWS = Counter("breakfix_api_workflows_total", "Workflows the API ran, by outcome", ["outcome"])


def initialise() -> None:
    """Create every series with zero (idempotent: prometheus-client keeps one child per label set)."""
    for status in PLAN_STATUSES:
        PLANS.labels(status)
    for outcome in WORKFLOW_OUTCOMES:
        WORKFLOWS.labels(outcome)
