"""An in-process Kubernetes API server stand-in, for tests that drive the real ``kubernetes`` client.

No kube-apiserver can run here (it needs etcd and a container runtime), so this serves, over HTTP on
loopback, exactly the REST semantics the product relies on — and nothing is mocked on the client side:

- nodes: list / get / watch / create / replace (PUT) / patch with ``application/merge-patch+json``,
  ``application/strategic-merge-patch+json`` (taints merge by ``key``, ``$patch: delete``) and
  ``application/json-patch+json``; a ``metadata.resourceVersion`` in a write is a precondition and a
  stale one answers 409 Conflict;
- pods: list (all namespaces or one; ``fieldSelector=spec.nodeName=X``, ``labelSelector=a=b,c=d``),
  watch, get, delete, and the ``pods/{name}/eviction`` subresource, answering 429 while a
  PodDisruptionBudget covering the pod has ``status.disruptionsAllowed`` 0;
- PodDisruptionBudgets (policy/v1): list / get / create; ``disruptionsAllowed`` is recomputed from the
  healthy matching pods after every pod change (``minAvailable`` or ``maxUnavailable``, integers);
- ``resource.k8s.io`` (discovery, ResourceSlices, DeviceTaintRules) as the release named by
  ``k8s_minor`` serves it: see kube_dra.py;
- watches (``?watch=true``): JSON lines, ``resourceVersion`` to resume, ``timeoutSeconds``; a resume
  point older than the retained history gets an ``ERROR`` event with a 410 Status, as the real server
  sends, which the client's ``Watch`` turns into ``ApiException(410)``.

Tests seed and inspect state through Python methods (``add_node``, ``add_pod``, ``add_pdb``,
``node``, ``pods_on``) and read ``requests`` (method, path, status) to assert what the client did.
``concurrent_writes(n)`` makes another writer touch a node just before each of the next ``n`` node
writes, so a write carrying the resourceVersion it read gets a genuine 409.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.kube_dra import DraResources

Obj = dict[str, Any]

# List fields that a strategic merge patch merges by key instead of replacing (the ones used here).
_MERGE_KEYS = {("spec", "taints"): "key", ("status", "conditions"): "type"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.body = code, _status(code, reason, message)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """The subset of Kubernetes strategic merge patch the node fields need: like a merge patch, but
    lists named in ``_MERGE_KEYS`` merge element-wise by their key and honour ``$patch: delete``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue
        sub = (*path, key)
        if value is None:
            out.pop(key, None)
        elif sub in _MERGE_KEYS and isinstance(value, list):
            merge_key = _MERGE_KEYS[sub]
            items = [dict(i) for i in out.get(key) or []]
            for item in value:
                idx = next((n for n, i in enumerate(items) if i.get(merge_key) == item.get(merge_key)), None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        items.pop(idx)
                elif idx is None:
                    items.append(copy.deepcopy(item))
                else:
                    items[idx] = merge_patch(items[idx], item)
            out[key] = items
        else:
            out[key] = strategic_merge_patch(out.get(key), value, sub)
    return out


def json_patch(target: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 JSON patch (add, remove, replace, test) — the client's default patch content type."""
    doc: Any = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        elif isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "remove":
                parent.pop(idx)
            elif kind == "add":
                parent.insert(idx, op["value"])
            else:
                parent[idx] = op["value"]
        elif kind == "remove":
            parent.pop(last)
        else:
            parent[last] = op["value"]
    return dict(doc)


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its keep-alive connection is normal, not worth a traceback (printing
        one from a handler thread also races pytest's own ``ast`` use on Python 3.11)."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class KubeApiServer:
    """Start with ``with KubeApiServer() as api:``; ``api.url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, history: int = 1000, k8s_minor: int = 0, device_taints_gate: bool = False) -> None:
        """``k8s_minor`` (e.g. 34): serve ``resource.k8s.io`` as that release does (kube_dra.py);
        0 serves no DRA at all (a device-plugin cluster)."""
        self._lock = threading.Condition()
        self.dra = DraResources(k8s_minor, device_taints_gate, self._bump, ApiError)
        self._rv = 0
        self._nodes: dict[str, Obj] = {}
        self._pods: dict[tuple[str, str], Obj] = {}
        self._pdbs: dict[tuple[str, str], Obj] = {}
        self._events: deque[tuple[int, str, str, Obj]] = deque(maxlen=history)  # rv, kind, type, obj
        self._closing = False
        self._pending_conflicts = 0
        self.requests: list[tuple[str, str, int]] = []
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> KubeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- seeding and inspection (tests) ---------------------------------------------------------

    def add_node(self, name: str, labels: dict[str, str] | None = None, gpus: int = 8, **spec: Any) -> Obj:
        obj = {
            "metadata": {"name": name, "labels": labels or {}, "annotations": {}},
            "spec": spec,
            "status": {
                "allocatable": {"nvidia.com/gpu": str(gpus)},
                "capacity": {"nvidia.com/gpu": str(gpus)},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        with self._lock:
            return self._create("Node", obj)

    def add_pod(
        self,
        name: str,
        node: str,
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        gpus: int = 0,
        annotations: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        owner_kind: str | None = None,
    ) -> Obj:
        container: Obj = {"name": "main", "image": "busybox"}
        if gpus:
            container["resources"] = {
                "requests": {"nvidia.com/gpu": str(gpus)},
                "limits": {"nvidia.com/gpu": str(gpus)},
            }
        if env:
            container["env"] = [{"name": k, "value": v} for k, v in env.items()]
        meta: Obj = {
            "name": name,
            "namespace": namespace,
            "labels": labels or {},
            "annotations": annotations or {},
        }
        if owner_kind:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner_kind,
                    "name": f"{name}-owner",
                    "uid": str(uuid.uuid4()),
                    "controller": True,
                }
            ]
        obj = {
            "metadata": meta,
            "spec": {"nodeName": node, "containers": [container]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
        with self._lock:
            created = self._create("Pod", obj)
            self._recompute_pdbs()
            return created

    def add_pdb(
        self,
        name: str,
        match_labels: dict[str, str],
        namespace: str = "default",
        min_available: int | None = None,
        max_unavailable: int | None = None,
    ) -> Obj:
        spec: Obj = {"selector": {"matchLabels": match_labels}}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        with self._lock:
            self._create(
                "PodDisruptionBudget", {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
            )
            self._recompute_pdbs(initial=True)
            return copy.deepcopy(self._pdbs[(namespace, name)])

    def node(self, name: str) -> Obj:
        with self._lock:
            return copy.deepcopy(self._nodes[name])

    def pods_on(self, node: str) -> list[str]:
        with self._lock:
            return sorted(
                f"{ns}/{n}" for (ns, n), p in self._pods.items() if p["spec"].get("nodeName") == node
            )

    def pdb(self, name: str, namespace: str = "default") -> Obj:
        with self._lock:
            return copy.deepcopy(self._pdbs[(namespace, name)])

    def concurrent_writes(self, count: int) -> None:
        with self._lock:
            self._pending_conflicts = count

    def calls(self, method: str, contains: str = "") -> list[tuple[str, str, int]]:
        return [r for r in self.requests if r[0] == method and contains in r[1]]

    # --- state changes (hold the lock) ------------------------------------------------------------

    def _store(self, kind: str) -> dict[Any, Obj]:
        return {"Node": self._nodes, "Pod": self._pods, "PodDisruptionBudget": self._pdbs}[kind]

    @staticmethod
    def _key(kind: str, obj: Obj) -> Any:
        meta = obj["metadata"]
        return meta["name"] if kind == "Node" else (meta.get("namespace", "default"), meta["name"])

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _record(self, kind: str, etype: str, obj: Obj) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._events.append((self._rv, kind, etype, copy.deepcopy(obj)))
        self._lock.notify_all()
        return copy.deepcopy(obj)

    def _create(self, kind: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if kind != "Node":
            meta.setdefault("namespace", "default")
        key = self._key(kind, obj)
        if key in self._store(kind):
            raise ApiError(409, "AlreadyExists", f"{kind} {meta['name']} already exists")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        obj["kind"] = kind
        obj["apiVersion"] = "policy/v1" if kind == "PodDisruptionBudget" else "v1"
        self._store(kind)[key] = obj
        return self._record(kind, "ADDED", obj)

    def _write_node(self, name: str, new: Obj) -> Obj:
        current = self._nodes.get(name)
        if current is None:
            raise ApiError(404, "NotFound", f'nodes "{name}" not found')
        if self._pending_conflicts > 0:  # another controller writes first: the client's read is now stale
            self._pending_conflicts -= 1
            current["metadata"].setdefault("annotations", {})["other.io/touched"] = str(self._rv)
            self._record("Node", "MODIFIED", current)
        wanted_rv = (new.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on nodes "{name}": '
                "the object has been modified; please apply your changes to the latest version",
            )
        new["metadata"]["name"], new["metadata"]["uid"] = name, current["metadata"]["uid"]
        new["kind"], new["apiVersion"] = "Node", "v1"
        self._nodes[name] = new
        return self._record("Node", "MODIFIED", new)

    def _delete_pod(self, ns: str, name: str) -> Obj:
        pod = self._pods.pop((ns, name), None)
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        out = self._record("Pod", "DELETED", pod)
        self._recompute_pdbs()
        return out

    def _matching_pods(self, pdb: Obj) -> list[Obj]:
        ns, sel = pdb["metadata"]["namespace"], pdb["spec"]["selector"].get("matchLabels", {})
        return [
            p
            for (pns, _), p in self._pods.items()
            if pns == ns and all(p["metadata"]["labels"].get(k) == v for k, v in sel.items())
        ]

    def _recompute_pdbs(self, initial: bool = False) -> None:
        for pdb in self._pdbs.values():
            healthy = len([p for p in self._matching_pods(pdb) if p["status"].get("phase") == "Running"])
            status = pdb.setdefault("status", {})
            if initial or "expectedPods" not in status:
                status["expectedPods"] = max(status.get("expectedPods", 0), healthy)
            spec = pdb["spec"]
            if "minAvailable" in spec:
                allowed = healthy - int(spec["minAvailable"])
            else:
                allowed = int(spec.get("maxUnavailable", 0)) - (status["expectedPods"] - healthy)
            new = {**status, "currentHealthy": healthy, "disruptionsAllowed": max(0, allowed)}
            if new != status:
                pdb["status"] = new
                self._record("PodDisruptionBudget", "MODIFIED", pdb)

    def _evict(self, ns: str, name: str) -> Obj:
        pod = self._pods.get((ns, name))
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        for pdb in self._pdbs.values():
            if pod in self._matching_pods(pdb) and pdb["status"]["disruptionsAllowed"] <= 0:
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's "
                    f"disruption budget. The disruption budget {pdb['metadata']['name']} needs "
                    f"{pdb['spec'].get('minAvailable', '?')} healthy pods",
                )
        self._delete_pod(ns, name)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    # --- HTTP routing -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any, ctype: str) -> tuple[int, Obj]:
        parts = path.strip("/").split("/")
        with self._lock:
            if parts[:3] == ["api", "v1", "nodes"]:
                return self._nodes_route(method, parts[3:], query, body, ctype)
            if parts[:2] == ["api", "v1"]:
                ns, rest = (
                    (parts[3], parts[4:])
                    if parts[2] == "namespaces" and len(parts) > 4
                    else (None, parts[2:])
                )
                if rest[:1] == ["pods"]:
                    return self._pods_route(method, ns, rest[1:], query, body)
            if parts[:2] == ["apis", "resource.k8s.io"]:
                return self.dra.handle(method, parts[2:], query, body)
            if parts[:2] == ["apis", "policy"] and parts[2] == "v1":
                ns, rest = (parts[4], parts[5:]) if parts[3] == "namespaces" else (None, parts[3:])
                if rest[:1] == ["poddisruptionbudgets"]:
                    return self._pdb_route(method, ns, rest[1:], body)
        raise ApiError(404, "NotFound", f"the server could not find the requested resource {path}")

    def _list(self, kind: str, items: list[Obj]) -> tuple[int, Obj]:
        api = "policy/v1" if kind == "PodDisruptionBudget" else "v1"
        return 200, {
            "kind": f"{kind}List",
            "apiVersion": api,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": copy.deepcopy(items),
        }

    def _nodes_route(self, method: str, rest: list[str], query: dict[str, str], body: Any, ctype: str):  # type: ignore[no-untyped-def]
        if not rest:
            if method == "POST":
                return 201, self._create("Node", body)
            sel = query.get("labelSelector", "")
            return self._list(
                "Node",
                [n for n in self._nodes.values() if _selector_matches(sel, n["metadata"].get("labels", {}))],
            )
        name = rest[0]
        current = self._nodes.get(name)
        if current is None:
            raise ApiError(404, "NotFound", f'nodes "{name}" not found')
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "PUT":
            return 200, self._write_node(name, body)
        if method == "PATCH":
            if "json-patch" in ctype:
                new = json_patch(current, body)
            elif "strategic-merge" in ctype:
                new = strategic_merge_patch(current, body)
            elif "merge-patch" in ctype:
                new = merge_patch(current, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"patch content type {ctype} is not supported")
            new.setdefault("metadata", {})["resourceVersion"] = (
                (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
            )
            return 200, self._write_node(name, new)
        raise ApiError(405, "MethodNotAllowed", method)

    def _pods_route(self, method: str, ns: str | None, rest: list[str], query: dict[str, str], body: Any):  # type: ignore[no-untyped-def]
        if not rest:
            field = query.get("fieldSelector", "")
            node = field.split("=", 1)[1] if field.startswith("spec.nodeName=") else None
            sel = query.get("labelSelector", "")
            pods = [
                p
                for (pns, _), p in self._pods.items()
                if (ns is None or pns == ns)
                and (node is None or p["spec"].get("nodeName") == node)
                and _selector_matches(sel, p["metadata"].get("labels", {}))
            ]
            return self._list("Pod", pods)
        assert ns is not None
        name = rest[0]
        if rest[1:] == ["eviction"] and method == "POST":
            return 201, self._evict(ns, name)
        if method == "DELETE":
            return 200, self._delete_pod(ns, name)
        pod = self._pods.get((ns, name))
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        return 200, copy.deepcopy(pod)

    def _pdb_route(self, method: str, ns: str | None, rest: list[str], body: Any):  # type: ignore[no-untyped-def]
        if not rest:
            if method == "POST":
                body.setdefault("metadata", {})["namespace"] = ns or "default"
                self._create("PodDisruptionBudget", body)
                self._recompute_pdbs(initial=True)
                return 201, copy.deepcopy(self._pdbs[(ns or "default", body["metadata"]["name"])])
            return self._list(
                "PodDisruptionBudget", [p for (pns, _), p in self._pdbs.items() if ns in (None, pns)]
            )
        pdb = self._pdbs.get((ns or "default", rest[0]))
        if pdb is None:
            raise ApiError(404, "NotFound", f'poddisruptionbudgets "{rest[0]}" not found')
        return 200, copy.deepcopy(pdb)

    # --- watch ----------------------------------------------------------------------------------------

    def watch_events(self, kind: str, since: str | None, timeout_s: float, accept: Any):  # type: ignore[no-untyped-def]
        """Yield watch event dicts for ``kind`` after resourceVersion ``since`` until the timeout."""
        import time

        deadline = time.monotonic() + timeout_s
        with self._lock:
            if not since or since == "0":  # a fresh watch starts with the current objects as ADDED
                pending = [("ADDED", copy.deepcopy(o)) for o in self._store(kind).values() if accept(o)]
                last = self._rv
            else:
                last = int(since)
                oldest = self._events[0][0] if self._events else self._rv + 1
                if last < oldest - 1 and last < self._rv:
                    yield {
                        "type": "ERROR",
                        "object": _status(410, "Expired", f"too old resource version: {last} ({oldest - 1})"),
                    }
                    return
                pending = []
        while True:
            yield from ({"type": t, "object": o} for t, o in pending)
            with self._lock:
                while not self._closing and (not self._events or self._events[-1][0] <= last):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._lock.wait(remaining)
                if self._closing:
                    return
                pending = [
                    (t, copy.deepcopy(o))
                    for rv, k, t, o in self._events
                    if rv > last and k == kind and accept(o)
                ]
                last = self._events[-1][0]


def _handler_for(api: KubeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read api.requests instead
            return

        def _reply(self, code: int, obj: Obj) -> None:
            data = json.dumps(obj).encode()
            # Recorded before the reply leaves: a client that has its answer must also see the call.
            api.requests.append((self.command, self.path, code))
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
                if query.get("watch") in ("true", "1") and self.command == "GET":
                    self._watch(url.path, query)
                    return
                code, obj = api.handle(
                    self.command, url.path, query, body, self.headers.get("Content-Type", "")
                )
            except ApiError as err:
                code, obj = err.code, err.body
            except (ValueError, KeyError, IndexError, TypeError) as err:
                code, obj = 400, _status(400, "BadRequest", f"{type(err).__name__}: {err}")
            self._reply(code, obj)

        def _watch(self, path: str, query: dict[str, str]) -> None:
            parts = path.strip("/").split("/")
            kind = {"nodes": "Node", "pods": "Pod", "poddisruptionbudgets": "PodDisruptionBudget"}[parts[-1]]
            ns = parts[parts.index("namespaces") + 1] if "namespaces" in parts else None
            field, sel = query.get("fieldSelector", ""), query.get("labelSelector", "")
            node = field.split("=", 1)[1] if field.startswith("spec.nodeName=") else None

            def accept(o: Obj) -> bool:
                meta = o["metadata"]
                return (
                    (ns is None or meta.get("namespace") == ns)
                    and _selector_matches(sel, meta.get("labels", {}))
                    and (node is None or o.get("spec", {}).get("nodeName") == node)
                )

            api.requests.append(("WATCH", self.path, 200))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            timeout = float(query.get("timeoutSeconds") or 300)
            try:
                for event in api.watch_events(kind, query.get("resourceVersion"), timeout, accept):
                    line = json.dumps(event).encode() + b"\n"
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
