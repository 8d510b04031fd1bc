"""Fleet metrics for Prometheus, read from the audit store at scrape time (``breakfix metrics --port``)."""

from breakfix.metrics.collector import FleetCollector
from breakfix.metrics.server import fleet_registry, serve_fleet

__all__ = ["FleetCollector", "fleet_registry", "serve_fleet"]
