"""Per-GPU quarantine through DRA device taints, on clusters whose GPUs come from a DRA driver.

With Dynamic Resource Allocation a GPU is a device in a ResourceSlice (driver, pool, device name),
and a ``DeviceTaintRule`` (group ``resource.k8s.io``) taints exactly that device: ``NoSchedule``
keeps new claims off it, ``NoExecute`` also evicts the pods whose claims hold it, and ``None`` only
reports what would happen (the product's dry run). Kubernetes' own device-taint documentation and
the ``k8s.io/api/resource`` types are the source of these facts; the API versions differ by release
(``v1alpha3`` from 1.33 behind the DRADeviceTaints gate, ``None`` from 1.35, ``v1beta2`` from 1.36,
``v1`` from 1.37), so the version is discovered from the cluster, never assumed. The selector uses
only driver, pool and device, the fields every version keeps (``deviceClassName`` and CEL
``selectors`` were dropped in 1.35).

The GPU is found in the node's ResourceSlices by its ``index`` attribute (NVIDIA's DRA driver,
``gpu.nvidia.com``, publishes one). Ownership: each rule the product writes is named after node and
GPU, labelled ``app.kubernetes.io/managed-by: breakfix``, and carries the product's taint key; a
rule without both is somebody else's and is never changed or removed. A cluster without the group,
the resource or a DRA device for that GPU answers None, and the caller takes the device-plugin path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from actuators.base import TAINT_KEY, PermanentError

GROUP = "resource.k8s.io"
PREFERENCE = ("v1", "v1beta2", "v1beta1", "v1alpha3")
GPU_DRIVER = "gpu.nvidia.com"
MANAGED_BY = "app.kubernetes.io/managed-by"
NODE_LABEL = "breakfix.io/node"
GPU_LABEL = "breakfix.io/gpu"
Effect = Literal["None", "NoSchedule", "NoExecute"]
EFFECTS: tuple[str, ...] = ("None", "NoSchedule", "NoExecute")

TOLERATION: dict[str, str] = {"key": TAINT_KEY, "operator": "Exists"}
"""What the validation workload's ResourceClaim carries in ``tolerations`` to run on a GPU the
product tainted (any effect of the product's key); every other claim stays off it."""


@dataclass(frozen=True)
class Device:
    driver: str
    pool: str
    name: str


def rule_name(node: str, gpu: int) -> str:
    """``breakfix-<node>-gpu<N>``, made a valid object name (lower case, at most 253 characters)."""
    base = re.sub(r"[^a-z0-9.-]+", "-", node.lower()).strip("-.") or "node"
    return f"breakfix-{base}"[:240] + f"-gpu{gpu}"


class DeviceTaints:
    """The resource.k8s.io calls, through the official client's ApiClient (the installed client may
    predate these kinds, so objects travel as plain JSON)."""

    def __init__(self, api: ApiClient, driver: str = GPU_DRIVER) -> None:
        self.api = api
        self.driver = driver
        self._versions: dict[str, str | None] = {}

    def _call(
        self, method: str, path: str, body: Any = None, query: list[tuple[str, str]] | None = None
    ) -> Any:
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request)
        response.read()  # type: ignore[no-untyped-call]
        try:  # a non-2xx answer raises ApiException (status, reason, body), as the typed APIs do
            return self.api.response_deserialize(response, {"2XX": "object"}).data
        except ApiException as err:
            if err.status == 422:  # the server says what is invalid: permanent, and worth quoting
                raise PermanentError(f"{method} {path}: 422 {_message(err)}") from err
            raise

    def version(self, resource: str) -> str | None:
        """The most stable version of ``resource.k8s.io`` that serves ``resource``, or None."""
        if resource not in self._versions:
            self._versions[resource] = self._discover(resource)
        return self._versions[resource]

    def _discover(self, resource: str) -> str | None:
        try:
            group = self._call("GET", f"/apis/{GROUP}")
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        served = [v["version"] for v in group.get("versions", [])]
        for v in sorted(served, key=lambda x: PREFERENCE.index(x) if x in PREFERENCE else len(PREFERENCE)):
            listing = self._call("GET", f"/apis/{GROUP}/{v}")
            if any(r.get("name") == resource for r in listing.get("resources", [])):
                return str(v)
        return None

    def device(self, node: str, gpu: int) -> Device | None:
        """The DRA device of GPU ``gpu`` on ``node``, from the node's ResourceSlices."""
        v = self.version("resourceslices")
        if v is None or self.version("devicetaintrules") is None:
            return None
        query = [("fieldSelector", f"spec.nodeName={node},spec.driver={self.driver}")]
        slices = self._call("GET", f"/apis/{GROUP}/{v}/resourceslices", query=query)
        for s in slices.get("items", []):
            spec = s.get("spec", {})
            for d in spec.get("devices", []):
                attrs = (d.get("basic") or d).get("attributes") or {}  # v1beta1 wraps them in `basic`
                index = attrs.get("index") or attrs.get(f"{self.driver}/index") or {}
                if index.get("int") == gpu:
                    return Device(
                        spec.get("driver", self.driver), spec.get("pool", {}).get("name", node), d["name"]
                    )
        return None

    def _rules(self) -> str:
        v = self.version("devicetaintrules")
        if v is None:
            raise PermanentError("the cluster serves no DeviceTaintRule")
        return f"/apis/{GROUP}/{v}/devicetaintrules"

    def get(self, node: str, gpu: int) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", f"{self._rules()}/{rule_name(node, gpu)}"))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def taint(self, node: str, gpu: int, device: Device, effect: Effect, value: str) -> tuple[bool, str]:
        """Create (or move to ``effect``) the product's rule for this GPU; (changed, detail)."""
        if effect not in EFFECTS:
            raise PermanentError(f"device taint effect must be one of {EFFECTS}, not {effect!r}")
        name = rule_name(node, gpu)
        taint = {"key": TAINT_KEY, "value": _label_value(value), "effect": effect}
        current = self.get(node, gpu)
        if current is None:
            labels = {MANAGED_BY: "breakfix", NODE_LABEL: _label_value(node), GPU_LABEL: str(gpu)}
            body = {
                "apiVersion": f"{GROUP}/{self.version('devicetaintrules')}",
                "kind": "DeviceTaintRule",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "deviceSelector": {"driver": device.driver, "pool": device.pool, "device": device.name},
                    "taint": taint,
                },
            }
            self._call("POST", self._rules(), body=body)
            return True, f"DeviceTaintRule {name}: {device.driver}/{device.pool}/{device.name} {effect}"
        if not _ours(current):
            raise PermanentError(f"DeviceTaintRule {name} exists and is not the product's: left alone")
        if current["spec"]["taint"].get("effect") == effect:
            return False, f"DeviceTaintRule {name} already {effect}"
        current["spec"]["taint"] = {**current["spec"]["taint"], "effect": effect}
        self._call("PUT", f"{self._rules()}/{name}", body=current)  # resourceVersion: a race is a 409
        return True, f"DeviceTaintRule {name} now {effect}"

    def lift(self, node: str, gpu: int) -> tuple[bool, str]:
        name = rule_name(node, gpu)
        current = self.get(node, gpu)
        if current is None:
            return False, f"no DeviceTaintRule {name}"
        if not _ours(current):
            raise PermanentError(f"DeviceTaintRule {name} is not the product's: only its owner lifts it")
        self._call("DELETE", f"{self._rules()}/{name}")
        return True, f"DeviceTaintRule {name} removed"

    def owned_on(self, node: str) -> list[str]:
        """Names of the product's rules for ``node`` (what ``owns`` reports)."""
        if self.version("devicetaintrules") is None:
            return []
        query = [("labelSelector", f"{MANAGED_BY}=breakfix,{NODE_LABEL}={_label_value(node)}")]
        rules = self._call("GET", self._rules(), query=query)
        return [r["metadata"]["name"] for r in rules.get("items", []) if _ours(r)]


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except ValueError:
        return str(err.reason)


def _ours(rule: dict[str, Any]) -> bool:
    labels = rule.get("metadata", {}).get("labels") or {}
    return (
        labels.get(MANAGED_BY) == "breakfix" and rule.get("spec", {}).get("taint", {}).get("key") == TAINT_KEY
    )


def _label_value(text: str) -> str:
    """A valid label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63]
    return cleaned.strip("._-")
