"""Serve the fleet gauges on ``/metrics`` from a registry of their own (``breakfix metrics --port``).

A dedicated registry keeps this exporter's page to the fleet figures plus its own process metrics,
so Prometheus can scrape it next to the stage processes without double-counting their series.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.process_collector import ProcessCollector

from breakfix.metrics.collector import FleetCollector
from store.base import Store


def fleet_registry(store: Store, window_s: float | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(FleetCollector(store, window_s))
    ProcessCollector(registry=registry)
    return registry


def serve_fleet(
    store: Store, port: int, addr: str = "127.0.0.1", window_s: float | None = None
) -> WSGIServer:
    """Start serving in a daemon thread; call ``shutdown()`` and ``server_close()`` on the result to stop."""
    server, _thread = start_http_server(port, addr, fleet_registry(store, window_s))
    return server
