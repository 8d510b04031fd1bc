"""The ``resource.k8s.io`` part of the Kubernetes API stand-in: discovery, ResourceSlices and
DeviceTaintRules, with the API server's semantics for the calls the product makes.

Which versions serve what follows Kubernetes' releases (``k8s.io/api/resource`` lifecycle tags and
the device-taint KEP): ResourceSlices ``v1beta1`` (1.32), ``v1beta2`` (1.33), ``v1`` (1.34);
DeviceTaintRules ``v1alpha3`` from 1.33 only with the DRADeviceTaints feature gate, ``v1beta2`` from
1.36, ``v1`` from 1.37; the ``None`` effect is accepted from 1.35. Served like the real server:

- ``GET /apis/resource.k8s.io`` (APIGroup) and ``/apis/resource.k8s.io/{v}`` (APIResourceList);
- ResourceSlices: list with ``fieldSelector`` on ``spec.nodeName`` and ``spec.driver``; devices carry
  their attributes under ``basic`` in ``v1beta1`` and directly in later versions;
- DeviceTaintRules (cluster-scoped): create (201; 409 AlreadyExists; 422 Invalid for a bad name,
  taint key, value or effect), get/list (``labelSelector``), replace (a stale ``resourceVersion`` is
  409 Conflict; ``generation`` rises when the spec changes; ``spec.taint.timeAdded`` is set on create
  and renewed when the effect changes) and delete (200 with the object; 404 NotFound).

Not served: the eviction controller that acts on NoExecute and writes ``status.conditions``, and the
scheduler's allocation; tests read the rules and assert on them.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
GROUP = "resource.k8s.io"
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def served(minor: int, taint_gate: bool) -> dict[str, list[str]]:
    """Versions of ``resource.k8s.io`` serving each resource on Kubernetes 1.<minor>."""
    slices = [v for v, since in (("v1", 34), ("v1beta2", 33), ("v1beta1", 32)) if minor >= since]
    rules = [v for v, since in (("v1", 37), ("v1beta2", 36)) if minor >= since]
    if minor >= 33 and (taint_gate or minor >= 36):
        rules.append("v1alpha3")
    return {"resourceslices": slices, "devicetaintrules": rules}


class DraResources:
    def __init__(self, minor: int, taint_gate: bool, next_rv: Any, error: Any) -> None:
        self.minor = minor
        self.versions = served(minor, taint_gate)
        self._next_rv, self._error = next_rv, error
        self.slices: list[Obj] = []
        self.rules: dict[str, Obj] = {}

    # --- seeding (tests) --------------------------------------------------------------------------

    def add_gpus(self, node: str, count: int = 8, driver: str = "gpu.nvidia.com") -> None:
        """One ResourceSlice per node, pool named after the node, devices ``gpu-N`` with ``index``,
        as NVIDIA's DRA driver publishes them."""
        devices = [
            {
                "name": f"gpu-{i}",
                "attributes": {"index": {"int": i}, "uuid": {"string": f"GPU-{uuid.uuid4()}"}},
            }
            for i in range(count)
        ]
        self.slices.append(
            {
                "metadata": {"name": f"{node}-{driver}-{uuid.uuid4().hex[:5]}"},
                "spec": {
                    "driver": driver,
                    "nodeName": node,
                    "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                    "devices": devices,
                },
            }
        )

    def rules_on(self, device: str) -> list[Obj]:
        return [
            r for r in self.rules.values() if (r["spec"].get("deviceSelector") or {}).get("device") == device
        ]

    # --- routes -----------------------------------------------------------------------------------

    def handle(self, method: str, rest: list[str], query: dict[str, str], body: Any) -> tuple[int, Obj]:
        all_versions = sorted(
            {v for vs in self.versions.values() for v in vs},
            key=["v1", "v1beta2", "v1beta1", "v1alpha3"].index,
        )
        if not all_versions:
            raise self._error(
                404, "NotFound", f"the server could not find the requested resource /apis/{GROUP}"
            )
        if not rest:
            preferred = {"groupVersion": f"{GROUP}/{all_versions[0]}", "version": all_versions[0]}
            return 200, {
                "kind": "APIGroup", "apiVersion": "v1", "name": GROUP,
                "versions": [{"groupVersion": f"{GROUP}/{v}", "version": v} for v in all_versions],
                "preferredVersion": preferred,
            }  # fmt: skip
        version, rest = rest[0], rest[1:]
        if version not in all_versions:
            raise self._error(
                404, "NotFound", f"the server could not find the requested resource {GROUP}/{version}"
            )
        if not rest:
            resources = [
                {"name": r, "singularName": r[:-1], "namespaced": False, "kind": kind,
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                for r, kind in (("resourceslices", "ResourceSlice"), ("devicetaintrules", "DeviceTaintRule"))
                if version in self.versions[r]
            ]  # fmt: skip
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{version}",
                         "resources": resources}  # fmt: skip
        resource = rest[0]
        if version not in self.versions.get(resource, []):
            raise self._error(404, "NotFound", f"the server could not find the requested resource {resource}")
        if resource == "resourceslices" and method == "GET" and len(rest) == 1:
            return self._list_slices(version, query)
        if resource == "devicetaintrules":
            return self._rules_route(method, version, rest[1:], query, body)
        raise self._error(405, "MethodNotAllowed", f"{method} is not supported here")

    def _list_slices(self, version: str, query: dict[str, str]) -> tuple[int, Obj]:
        wanted = dict(p.split("=", 1) for p in query.get("fieldSelector", "").split(",") if "=" in p)
        items = []
        for s in self.slices:
            spec = s["spec"]
            if wanted.get("spec.nodeName", spec["nodeName"]) != spec["nodeName"]:
                continue
            if wanted.get("spec.driver", spec["driver"]) != spec["driver"]:
                continue
            obj = copy.deepcopy(s)
            if version == "v1beta1":
                obj["spec"]["devices"] = [
                    {"name": d["name"], "basic": {"attributes": d["attributes"]}} for d in spec["devices"]
                ]
            items.append({**obj, "kind": "ResourceSlice", "apiVersion": f"{GROUP}/{version}"})
        return 200, {
            "kind": "ResourceSliceList",
            "apiVersion": f"{GROUP}/{version}",
            "metadata": {},
            "items": items,
        }

    def _rules_route(
        self, method: str, version: str, rest: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Obj]:
        if not rest and method == "POST":
            return 201, self._served(self._create(version, body), version)
        if not rest and method == "GET":
            sel = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
            items = [self._served(r, version) for r in self.rules.values()
                     if all(r["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]  # fmt: skip
            return 200, {
                "kind": "DeviceTaintRuleList",
                "apiVersion": f"{GROUP}/{version}",
                "metadata": {},
                "items": items,
            }
        name = rest[0]
        current = self.rules.get(name)
        if current is None:
            raise self._error(404, "NotFound", f'devicetaintrules.{GROUP} "{name}" not found')
        if method == "GET":
            return 200, self._served(current, version)
        if method == "PUT":
            return 200, self._served(self._replace(version, current, body), version)
        if method == "DELETE":
            del self.rules[name]
            return 200, self._served(current, version)
        raise self._error(405, "MethodNotAllowed", f"{method} is not supported here")

    # --- semantics --------------------------------------------------------------------------------

    def _validate(self, version: str, obj: Obj) -> None:
        name = obj.get("metadata", {}).get("name", "")
        problems = []
        if not name or len(name) > 253 or not _DNS.match(name):
            problems.append(f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain")
        taint = (obj.get("spec") or {}).get("taint") or {}
        if not _LABEL_NAME.match(taint.get("key", "")):
            problems.append(f"spec.taint.key: Invalid value: {taint.get('key')!r}: must be a qualified name")
        if not _LABEL_VALUE.match(taint.get("value", "")):
            problems.append(f"spec.taint.value: Invalid value: {taint.get('value')!r}: must be a label value")
        effects = ["NoSchedule", "NoExecute"] + (["None"] if self.minor >= 35 else [])
        if taint.get("effect") not in effects:
            problems.append(
                f"spec.taint.effect: Unsupported value: {taint.get('effect')!r}: supported values: {effects}"
            )
        selector = (obj.get("spec") or {}).get("deviceSelector") or {}
        dropped = {"deviceClassName", "selectors"} & set(selector)
        if dropped and (self.minor >= 35 or version != "v1alpha3"):
            problems.append(f"spec.deviceSelector: unknown fields {sorted(dropped)}")
        if problems:
            raise self._error(
                422, "Invalid", f'DeviceTaintRule.{GROUP} "{name}" is invalid: ' + "; ".join(problems)
            )

    def _create(self, version: str, body: Obj) -> Obj:
        self._validate(version, body)
        name = body["metadata"]["name"]
        if name in self.rules:
            raise self._error(409, "AlreadyExists", f'devicetaintrules.{GROUP} "{name}" already exists')
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        meta.update(
            uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1, resourceVersion=self._next_rv()
        )
        obj["spec"]["taint"].setdefault("timeAdded", _now())
        self.rules[name] = obj
        return obj

    def _replace(self, version: str, current: Obj, body: Obj) -> Obj:
        self._validate(version, body)
        rv = body.get("metadata", {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise self._error(409, "Conflict", f'Operation cannot be fulfilled on devicetaintrules.{GROUP} '
                              f'"{current["metadata"]["name"]}": the object has been modified')  # fmt: skip
        obj = copy.deepcopy(body)
        old_taint, new_taint = current["spec"]["taint"], obj["spec"]["taint"]
        if new_taint.get("effect") != old_taint.get("effect") and new_taint.get("timeAdded") in (
            None,
            old_taint.get("timeAdded"),
        ):
            new_taint["timeAdded"] = _now()
        new_taint.setdefault("timeAdded", old_taint.get("timeAdded"))
        meta = {**current["metadata"], "labels": obj["metadata"].get("labels", {})}
        if obj["spec"] != current["spec"]:
            meta["generation"] = current["metadata"]["generation"] + 1
        meta["resourceVersion"] = self._next_rv()
        obj["metadata"] = meta
        self.rules[meta["name"]] = obj
        return obj

    @staticmethod
    def _served(obj: Obj, version: str) -> Obj:
        return {**copy.deepcopy(obj), "kind": "DeviceTaintRule", "apiVersion": f"{GROUP}/{version}"}
