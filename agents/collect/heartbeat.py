"""agent.heartbeat: a collector's "my view of node X is live", sent after every completed round.

"No data" is neither healthy nor faulty: the node stage needs to see a collector go
silent to record monitoring as unhealthy instead of reading silence as health. A round that fails
sends no heartbeat, so a broken source shows up as missing heartbeats within one interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams.kafka.producer import build_event


def heartbeats(collector: str, interval_s: float, nodes: Iterable[str]) -> list[dict[str, Any]]:
    """One heartbeat per covered node.

    >>> [(h["node"], h["data"]) for h in heartbeats("nvml", 10.0, ["gpu01"])]
    [('gpu01', {'collector': 'nvml', 'interval_s': 10.0})]
    """
    data = {"collector": collector, "interval_s": interval_s}
    return [build_event("agent.heartbeat", f"collect.{collector}", n, data) for n in nodes]
