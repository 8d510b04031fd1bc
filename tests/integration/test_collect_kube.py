"""Kubernetes collector: the real client against the in-process API server stand-in, over real HTTP.

A small TCP proxy sits between them so a test can cut the connection like a network blip or an
API server restart, and check the watch resumes from its last resourceVersion (or relists on 410).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from agents.collect.base import RecordingSink, run
from agents.collect.kube import KubeCollector
from schemas.deadletter import DeadLetter
from schemas.events import ChangeEvent, NodeCondition, NodeInventory, SchedulerState, WorkloadEvent
from schemas.recording import read_recording
from streams.kafka.producer import check
from tests.fakes.kube_apiserver import KubeApiServer

pytestmark = pytest.mark.integration


class Proxy:
    """Loopback TCP relay; ``cut()`` drops every connection, ``down``/``up`` refuse/accept new ones."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepting = True
        self.conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            if not self.accepting:
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.conns.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer(history=50) as server:
        yield server


@pytest.fixture
def proxy(api: KubeApiServer) -> Iterator[Proxy]:
    p = Proxy(int(api.url.rsplit(":", 1)[1]))
    yield p
    p.close()


def _collector(port: int, **kw: Any) -> KubeCollector:
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    return KubeCollector(client.ApiClient(cfg), interval_s=1, watch_timeout_s=30, retry_s=0.05, **kw)


def _round(c: KubeCollector, wait_s: float = 0.3) -> list[Any]:
    return [check(e) for e in c.poll(time.monotonic() + wait_s)]


def _until(c: KubeCollector, pred: Any, timeout_s: float = 5.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got += _round(c, 0.2)
        if pred(got):
            return got
    raise AssertionError(f"condition not met; got {[(type(e).__name__, e.data) for e in got]}")


def _set_pod_status(api: KubeApiServer, name: str, status: dict[str, Any], ns: str = "default") -> None:
    """The stand-in has no pod status writer (kubelet's job), so tests record the change directly."""
    with api._lock:
        pod = api._pods[(ns, name)]
        pod["status"] = status
        api._record("Pod", "MODIFIED", pod)


def _patch_node(port: int, name: str, body: dict[str, Any]) -> None:
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    client.CoreV1Api(client.ApiClient(cfg)).patch_node(name, body)


LABELS = {
    "breakfix.io/pool": "train",
    "breakfix.io/rack": "r7",
    "nvidia.com/gpu.product": "NVIDIA-H200",
    "nvidia.com/cuda.driver.major": "550",
    "nvidia.com/cuda.driver.minor": "90",
    "nvidia.com/cuda.driver.rev": "07",
}


def test_initial_sync_gives_inventory_conditions_and_allocatable(api: KubeApiServer, proxy: Proxy) -> None:
    api.add_node("gpu01", labels=LABELS, gpus=8)
    api.add_node("gpu02", gpus=4)
    c = _collector(proxy.port)
    try:
        events = _round(c, 1.0)
    finally:
        c.close()
    inv = {e.node: e for e in events if isinstance(e, NodeInventory)}
    assert (inv["gpu01"].data.pool, inv["gpu01"].data.rack, inv["gpu01"].data.sku) == (
        "train",
        "r7",
        "NVIDIA-H200",
    )
    assert inv["gpu01"].data.gpus == 8 and inv["gpu02"].data.pool == "default"
    conds = [(e.node, e.data.condition, e.data.status) for e in events if isinstance(e, NodeCondition)]
    assert sorted(conds) == [("gpu01", "Ready", "True"), ("gpu02", "Ready", "True")]
    sched = {e.node: e.data for e in events if isinstance(e, SchedulerState)}
    assert sched["gpu01"].allocatable_gpus == 8 and sched[None].allocatable_gpus == 12
    assert c.nodes() == ["gpu01", "gpu02"]


def test_condition_allocatable_and_driver_changes(api: KubeApiServer, proxy: Proxy) -> None:
    api.add_node("gpu01", labels=LABELS, gpus=8)
    c = _collector(proxy.port)
    try:
        _round(c, 1.0)
        quiet = _round(c, 0.2)
        assert [type(e) for e in quiet] == [SchedulerState]
        _patch_node(
            proxy.port,
            "gpu01",
            {
                "status": {
                    "allocatable": {"nvidia.com/gpu": "7"},
                    "conditions": [
                        {"type": "Ready", "status": "True"},
                        {
                            "type": "GpuXidError",
                            "status": "True",
                            "reason": "Xid79",
                            "message": "GPU fell off the bus",
                        },
                    ],
                },
                "metadata": {
                    "labels": {
                        "nvidia.com/cuda.driver.major": "570",
                        "nvidia.com/cuda.driver.minor": "124",
                        "nvidia.com/cuda.driver.rev": "06",
                    }
                },
            },
        )
        got = _until(c, lambda es: any(isinstance(e, ChangeEvent) for e in es))
    finally:
        c.close()
    conds = [e.data for e in got if isinstance(e, NodeCondition)]
    assert [(d.condition, d.status, d.reason) for d in conds] == [
        ("GpuXidError", "True", "Xid79")
    ]  # Ready unchanged
    assert [e.data.allocatable_gpus for e in got if isinstance(e, SchedulerState) and e.node == "gpu01"] == [
        7
    ]
    change = next(e for e in got if isinstance(e, ChangeEvent))
    assert (change.data.kind, change.data.version, change.data.scope.nodes) == (
        "driver",
        "570.124.06",
        ["gpu01"],
    )
    assert change.data.model_extra == {"previous": "550.90.07"}


def test_pod_crashloop_readiness_eviction_and_unschedulable(api: KubeApiServer, proxy: Proxy) -> None:
    api.add_node("gpu01", gpus=8)
    api.add_pod("trainer", "gpu01", gpus=8)
    api.add_pod("server", "gpu01", gpus=0)
    api.add_pod("batch", "gpu01", gpus=0)
    api.add_pod("waiting", "", gpus=8)
    c = _collector(proxy.port)
    try:
        _round(c, 1.0)
        _set_pod_status(
            api,
            "trainer",
            {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "main", "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ],
            },
        )
        _set_pod_status(
            api,
            "server",
            {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "False", "message": "readiness probe failed: HTTP 503"}
                ],
            },
        )
        _set_pod_status(
            api,
            "batch",
            {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."},
        )
        _set_pod_status(
            api,
            "waiting",
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. "
                        "preemption: 0/1 nodes are available",
                    }
                ],
            },
        )
        got = _until(c, lambda es: len([e for e in es if isinstance(e, WorkloadEvent)]) >= 3)
    finally:
        c.close()
    work = sorted((e.data.kind, e.data.pod, e.node) for e in got if isinstance(e, WorkloadEvent))
    assert work == [
        ("crashloop", "default/trainer", "gpu01"),
        ("eviction", "default/batch", "gpu01"),
        ("readiness_failure", "default/server", "gpu01"),
    ]
    cluster = [e for e in got if isinstance(e, SchedulerState) and e.node is None][-1]
    assert cluster.data.pending_pods == 1
    assert cluster.data.unschedulable == {"Insufficient nvidia.com/gpu": 1}
    assert cluster.data.evictions == 1


def test_disconnect_resumes_from_last_resource_version(api: KubeApiServer, proxy: Proxy) -> None:
    api.add_node("gpu01", gpus=8)
    c = _collector(proxy.port)
    try:
        _round(c, 1.0)
        lists_before = len(api.calls("GET", "/api/v1/nodes"))
        proxy.accepting = False
        proxy.cut()
        api.add_node("gpu02", gpus=8)  # happens while the collector is cut off
        time.sleep(0.3)
        proxy.accepting = True
        got = _until(c, lambda es: any(e.node == "gpu02" for e in es if isinstance(e, NodeInventory)))
    finally:
        c.close()
    assert c.stats["nodes.errors"] >= 1
    assert len(api.calls("GET", "/api/v1/nodes")) == lists_before  # no relist: the watch resumed
    resumed = [p for m, p, _ in api.requests if m == "WATCH" and "/nodes" in p][-1]
    assert "resourceVersion=" in resumed and "resourceVersion=0" not in resumed
    assert [e.data.condition for e in got if isinstance(e, NodeCondition) and e.node == "gpu01"] == []


def test_expired_resource_version_relists_and_emits_only_changes(api: KubeApiServer, proxy: Proxy) -> None:
    api.add_node("gpu01", gpus=8)
    api.add_node("gpu03", gpus=8)
    c = _collector(proxy.port)
    try:
        _round(c, 1.0)
        proxy.accepting = False
        proxy.cut()
        for i in range(60):  # more than the server's history of 50: the resume point expires
            api.add_pod(f"p{i}", "gpu01")
        _patch_node(
            int(api.url.rsplit(":", 1)[1]),
            "gpu01",
            {
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "KubeletNotReady",
                            "message": "PLEG is not healthy",
                        }
                    ]
                }
            },
        )
        time.sleep(0.2)
        proxy.accepting = True
        got = _until(c, lambda es: any(isinstance(e, NodeCondition) for e in es))
    finally:
        c.close()
    assert c.stats["nodes.relists"] >= 1
    conds = [
        (e.node, e.data.condition, e.data.status, e.data.reason) for e in got if isinstance(e, NodeCondition)
    ]
    assert conds == [("gpu01", "Ready", "False", "KubeletNotReady")]  # gpu03 unchanged: nothing re-emitted


def test_a_recording_of_the_watch_passes_the_pipeline_gate(
    api: KubeApiServer, proxy: Proxy, tmp_path: Path
) -> None:
    api.add_node("gpu01", labels=LABELS, gpus=8)
    api.add_pod("trainer", "gpu01", gpus=8)
    out = tmp_path / "kube.jsonl"
    sink = RecordingSink(out)
    stats = run(_collector(proxy.port), sink, once=True)
    sink.close()
    items = list(read_recording(out))  # the node stage's gate: inventory before anything else, ...
    assert not [i for i in items if isinstance(i, DeadLetter)], items
    assert stats.events["node.inventory"] == 1 and stats.events["agent.heartbeat"] == 1
