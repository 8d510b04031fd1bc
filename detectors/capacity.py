"""Capacity a node has already lost on its own, read from its live evidence.

The guard's headroom must count GPUs that are gone whatever the product does (a NotReady node, a GPU
fallen off the bus) as removed, or it would drain a pool below its minimum on top of failures it did
not cause. The node stage reads them here when it proposes, and the proposal carries the figure.
"""

from __future__ import annotations

from detectors.state import DetectState

READY_FRESH_S = 600.0
"""A NotReady reading counts as current for this long (kubelet reports its conditions far more often;
a node whose Ready went False and has not said otherwise since is still down)."""
OFF_THE_BUS = "xid.79"


def lost_gpus(st: DetectState, gpus: int, now: float) -> int:
    """GPUs the node cannot serve now: all when it is NotReady, else those fallen off the bus.

    >>> lost_gpus(DetectState("n1"), 8, 0.0)
    0
    """
    ready = st.slots.get(("node_os", None, "condition.Ready"))
    if ready is not None and now - ready.last_time <= READY_FRESH_S:
        return gpus
    gone = {g for (_, g, signal) in st.slots if g is not None and signal.startswith(OFF_THE_BUS)}
    return min(len(gone), gpus)
