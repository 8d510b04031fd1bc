"""Kubernetes collector: node and pod watches → node.condition, workload.event, scheduler.state,
change.event and node.inventory.

Two background threads list-then-watch nodes and pods with the official client and put raw watch
events on a queue; ``poll`` turns them into contract events by diffing against the last state it saw,
so only transitions are published (a relist after ``410 Gone`` re-emits nothing that did not change).
After a disconnect a watch resumes from the last resourceVersion it saw; only an expired one relists.

What is watched, and why:
- node conditions (kubelet's and node-problem-detector's) → node.condition on change;
- allocatable ``nvidia.com/gpu`` → per-node scheduler.state (the device plugin lowers it when a GPU
  goes unhealthy);
- driver / node image labels → change.event, so symptoms after a rollout are attributed to it;
- pods: CrashLoopBackOff, readiness lost, evictions → workload.event on the pod's node; pending and
  unschedulable reasons → a cluster-wide scheduler.state each round.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import watch as _watch_module

from agents.collect.base import CollectorUnavailable, Event
from agents.collect.inventory import InventoryConfig, inventory_event
from streams.kafka.producer import build_event

log = logging.getLogger(__name__)

SOURCE = "collect.kube"
GPU_RESOURCE = "nvidia.com/gpu"
# GPU feature discovery labels whose joined values name the driver version.
DRIVER_LABELS = ("nvidia.com/cuda.driver.major", "nvidia.com/cuda.driver.minor", "nvidia.com/cuda.driver.rev")
IMAGE_LABEL = "breakfix.io/node-image"
"""Sites that version node images label them; otherwise osImage + kernel from nodeInfo is used."""

Obj = dict[str, Any]
_config: Any = config  # the client's config loaders are untyped
_iter_lines: Any = _watch_module.iter_resp_lines  # the client's line splitter (untyped)


def api_client(
    kubeconfig: str | Path | None = None, in_cluster: bool = False, host: str | None = None
) -> client.ApiClient:
    """A client for ``--host`` (no auth: ``kubectl proxy``, tests), in-cluster, or a kubeconfig."""
    if host:
        conf = client.Configuration()
        conf.host = host
        return client.ApiClient(conf)
    try:
        if in_cluster:
            _config.load_incluster_config()
            return client.ApiClient()
        api: client.ApiClient = _config.new_client_from_config(
            config_file=str(kubeconfig) if kubeconfig else None
        )
    except Exception as err:  # ConfigException, missing file, bad YAML
        raise CollectorUnavailable(
            f"no usable Kubernetes configuration: {err}; pass --kubeconfig FILE, --in-cluster or --host URL"
        ) from err
    return api


def _node_image(node: Obj) -> str | None:
    labels = node["metadata"].get("labels") or {}
    if labels.get(IMAGE_LABEL):
        return str(labels[IMAGE_LABEL])
    info = (node.get("status") or {}).get("nodeInfo") or {}
    parts = [info.get("osImage"), info.get("kernelVersion")]
    return " / ".join(p for p in parts if p) or None


def _driver(labels: dict[str, str]) -> str | None:
    parts = [labels.get(k) for k in DRIVER_LABELS]
    return ".".join(p for p in parts if p) or None


def _gpus(node: Obj, key: str) -> int | None:
    value = ((node.get("status") or {}).get(key) or {}).get(GPU_RESOURCE)
    return int(value) if value is not None and str(value).isdigit() else None


_COUNT_PREFIX = re.compile(r"^\d+ ")


def unschedulable_reasons(message: str) -> list[str]:
    """The scheduler's reasons from a PodScheduled message, counts dropped.

    >>> unschedulable_reasons("0/4 nodes are available: 3 Insufficient nvidia.com/gpu, 1 node(s) had "
    ...                       "untolerated taint {breakfix.io/quarantine: }. preemption: ...")
    ['Insufficient nvidia.com/gpu', 'node(s) had untolerated taint {breakfix.io/quarantine: }']
    """
    _, _, tail = message.partition(": ")
    tail = tail.split(". preemption", 1)[0].rstrip(". ")
    reasons = [_COUNT_PREFIX.sub("", part.strip()) for part in tail.split(", ") if part.strip()]
    return reasons or ([message[:200]] if message else [])


@dataclass
class _NodeSeen:
    conditions: dict[str, tuple[str, str]] = field(default_factory=dict)
    allocatable: int | None = None
    driver: str | None = None
    image: str | None = None
    placement: tuple[Any, ...] = ()


@dataclass
class _PodSeen:
    crash_restarts: int = -1
    ready: bool | None = None
    evicted: bool = False


class KubeCollector:
    """Watches one cluster through an injected ``kubernetes.client.ApiClient``."""

    name = "kube"

    def __init__(
        self,
        api_client: client.ApiClient,
        interval_s: float = 30.0,
        inventory: InventoryConfig | None = None,
        watch_timeout_s: int = 300,
        retry_s: float = 1.0,
    ) -> None:
        self.interval_s = interval_s
        self.inventory = inventory or InventoryConfig()
        self.core = client.CoreV1Api(api_client)
        self.watch_timeout_s = watch_timeout_s
        self.retry_s = retry_s
        self.stats: Counter[str] = Counter()
        """lists, watches, resumes, relists (410), errors - per resource kind."""
        self._queue: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._nodes: dict[str, _NodeSeen] = {}
        self._pods: dict[tuple[str, str], _PodSeen] = {}
        self._pending: dict[tuple[str, str], list[str]] = {}
        self._pod_nodes: dict[tuple[str, str], str] = {}
        self._evictions = 0
        self._synced: set[str] = set()
        self._threads = [
            threading.Thread(target=self._loop, args=(kind, lister), name=f"kube-watch-{kind}", daemon=True)
            for kind, lister in (
                ("nodes", self.core.list_node),
                ("pods", self.core.list_pod_for_all_namespaces),
            )
        ]
        for t in self._threads:
            t.start()

    # --- watch threads -------------------------------------------------------------------------

    def _loop(self, kind: str, lister: Callable[..., Any]) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    resp = lister(_preload_content=False)
                    body = orjson.loads(resp.data)
                    rv = body["metadata"]["resourceVersion"]
                    self.stats[f"{kind}.lists"] += 1
                    self._queue.put(("SYNC", kind, body.get("items") or []))
                self.stats[f"{kind}.watches"] += 1
                rv = self._watch(kind, lister, rv)
                self.stats[f"{kind}.resumes"] += 1
            except ApiException as err:
                if err.status == 410:
                    self.stats[f"{kind}.relists"] += 1
                    log.info("%s watch expired (410 Gone): relisting", kind)
                    rv = None
                    continue
                self.stats[f"{kind}.errors"] += 1
                log.warning("%s watch failed (%s %s); retrying from %s", kind, err.status, err.reason, rv)
                self._stop.wait(self.retry_s)
            except Exception as err:  # connection reset, refused, DNS: retry from the same point
                if self._stop.is_set():
                    return
                self.stats[f"{kind}.errors"] += 1
                log.warning("%s watch disconnected (%s); resuming from %s", kind, err, rv)
                self._stop.wait(self.retry_s)

    def _watch(self, kind: str, lister: Callable[..., Any], rv: str) -> str:
        """One watch request from ``rv``; returns the last resourceVersion seen.

        Events stay raw JSON (no model deserialization): faster on big fleets, and one object the
        client's models reject (a field a newer server adds or omits) cannot stall the watch.
        """
        resp = lister(
            watch=True,
            resource_version=rv,
            timeout_seconds=self.watch_timeout_s,
            allow_watch_bookmarks=True,
            _preload_content=False,
        )
        try:
            for line in _iter_lines(resp):
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                ev = orjson.loads(line)
                obj = ev.get("object") or {}
                if ev.get("type") == "ERROR":
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    self._queue.put((ev["type"], kind, obj))
        finally:
            resp.close()
            resp.release_conn()
        return rv

    # --- nodes ---------------------------------------------------------------------------------

    def _node_events(self, etype: str, node: Obj) -> Iterator[Event]:
        name = node["metadata"]["name"]
        labels = {k: str(v) for k, v in (node["metadata"].get("labels") or {}).items()}
        if etype == "DELETED":
            self._nodes.pop(name, None)
            data: dict[str, Any] = {
                "condition": "Ready",
                "status": "Unknown",
                "reason": "NodeDeleted",
                "message": "",
            }
            yield build_event("node.condition", SOURCE, name, data)
            return
        seen = self._nodes.get(name)
        first = seen is None
        seen = seen or _NodeSeen()
        self._nodes[name] = seen
        placement = (self.inventory.placement(name, labels), _gpus(node, "capacity"), sorted(labels.items()))
        if placement != seen.placement:
            seen.placement = placement
            yield inventory_event(
                SOURCE, name, self.inventory, gpus=_gpus(node, "capacity") or 0, labels=labels
            )
        for c in (node.get("status") or {}).get("conditions") or []:
            state = (str(c.get("status", "Unknown")), str(c.get("reason") or ""))
            if seen.conditions.get(c["type"]) != state:
                seen.conditions[c["type"]] = state
                data = {"condition": c["type"], "status": state[0], "reason": state[1]}
                data["message"] = str(c.get("message") or "")
                yield build_event("node.condition", SOURCE, name, data)
        allocatable = _gpus(node, "allocatable")
        if first or allocatable != seen.allocatable:
            seen.allocatable = allocatable
            data = {"pending_pods": 0, "allocatable_gpus": allocatable}
            yield build_event("scheduler.state", SOURCE, name, data)
        for kind, new, old in (
            ("driver", _driver(labels), seen.driver),
            ("node_image", _node_image(node), seen.image),
        ):
            if new is not None and old is not None and new != old:
                data = {
                    "kind": kind,
                    "version": new,
                    "previous": old,
                    "scope": {"nodes": [name]},
                }
                yield build_event("change.event", SOURCE, name, data)
        seen.driver, seen.image = _driver(labels), _node_image(node)

    # --- pods ----------------------------------------------------------------------------------

    def _pod_events(self, etype: str, pod: Obj) -> Iterator[Event]:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        key = (meta.get("namespace", "default"), meta["name"])
        pod_name = f"{key[0]}/{key[1]}"
        node = spec.get("nodeName")
        if etype == "DELETED":
            self._pods.pop(key, None)
            self._pending.pop(key, None)
            self._pod_nodes.pop(key, None)
            return
        if node:
            self._pod_nodes[key] = node
        seen = self._pods.setdefault(key, _PodSeen())
        conds = {c.get("type"): c for c in status.get("conditions") or []}
        sched = conds.get("PodScheduled") or {}
        if status.get("phase") == "Pending":
            reasons = ["Pending"]
            if sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
                reasons = unschedulable_reasons(str(sched.get("message") or "")) or ["Unschedulable"]
            self._pending[key] = reasons
        else:
            self._pending.pop(key, None)
        if not node:
            return
        restarts = 0
        crashloop = False
        for cs in status.get("containerStatuses") or []:
            restarts += int(cs.get("restartCount") or 0)
            waiting = (cs.get("state") or {}).get("waiting") or {}
            crashloop = crashloop or waiting.get("reason") == "CrashLoopBackOff"
        if crashloop and restarts > seen.crash_restarts:
            seen.crash_restarts = restarts
            data: dict[str, Any] = {"kind": "crashloop", "pod": pod_name, "value": restarts}
            yield build_event("workload.event", SOURCE, node, data)
        if status.get("reason") == "Evicted" and not seen.evicted:
            seen.evicted = True
            self._evictions += 1
            data = {
                "kind": "eviction",
                "pod": pod_name,
                "message": str(status.get("message") or ""),
            }
            yield build_event("workload.event", SOURCE, node, data)
        ready = (conds.get("Ready") or {}).get("status")
        if status.get("phase") == "Running" and ready in ("True", "False"):
            is_ready = ready == "True"
            if seen.ready is True and not is_ready and not crashloop:  # a crash loop says more
                data = {
                    "kind": "readiness_failure",
                    "pod": pod_name,
                    "message": str(conds["Ready"].get("message") or ""),
                }
                yield build_event("workload.event", SOURCE, node, data)
            seen.ready = is_ready

    # --- Collector protocol --------------------------------------------------------------------

    def _handle(self, etype: str, kind: str, payload: Any) -> Iterator[Event]:
        handler = self._node_events if kind == "nodes" else self._pod_events
        if etype != "SYNC":
            yield from handler(etype, payload)
            return
        self._synced.add(kind)
        names = {
            o["metadata"]["name"]
            if kind == "nodes"
            else (o["metadata"].get("namespace", "default"), o["metadata"]["name"])
            for o in payload
        }
        known = list(self._nodes if kind == "nodes" else self._pods)
        for gone in [k for k in known if k not in names]:  # vanished while we were away
            meta = {"name": gone} if kind == "nodes" else {"namespace": gone[0], "name": gone[1]}
            yield from handler("DELETED", {"metadata": meta})
        for obj in payload:
            yield from handler("MODIFIED", obj)

    def _cluster_state(self) -> Event:
        reasons: Counter[str] = Counter(r for rs in self._pending.values() for r in rs)
        total = sum(s.allocatable or 0 for s in self._nodes.values())
        data: dict[str, Any] = {
            "pending_pods": len(self._pending),
            "unschedulable": dict(reasons),
            "evictions": self._evictions,
            "allocatable_gpus": total,
        }
        return build_event("scheduler.state", SOURCE, None, data)

    def poll(self, deadline: float) -> Iterator[Event]:
        """Events from the watches until ``deadline``; then one cluster-wide scheduler.state.
        The first round waits (up to the deadline) for both initial lists, so ``--once`` is complete."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and self._synced >= {"nodes", "pods"} and self._queue.empty():
                break
            try:
                etype, kind, payload = self._queue.get(timeout=max(0.01, min(remaining, 0.5)))
            except queue.Empty:
                if remaining <= 0 and time.monotonic() - deadline > self.interval_s:
                    break  # the API server is unreachable: heartbeats must not stop too
                continue
            yield from self._handle(etype, kind, payload)
        yield self._cluster_state()

    def nodes(self) -> list[str]:
        return sorted(self._nodes)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=0.1)
