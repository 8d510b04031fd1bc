"""Which pods use which GPU: the convention a partial (per-GPU) drain relies on.

Kubernetes itself does not say which device index a pod got. A pod counts as a GPU pod when any of
its containers requests or limits ``nvidia.com/gpu``; its GPU indices are read, in this order, from

1. the pod annotation ``breakfix.io/gpu-indices`` — a comma-separated list such as ``"0,3"``, written
   by whatever assigns devices at admission (a webhook, the job launcher, or the workload itself);
2. a container's ``NVIDIA_VISIBLE_DEVICES`` env value when it is a list of integer indices (the
   NVIDIA device plugin's ``envvar`` strategy with index IDs); UUIDs, ``all`` and ``none`` name no
   index.

A GPU pod whose indices cannot be read is *unknown* and is included in a per-GPU drain: the reset
of a GPU fails while any process holds it, and moving one pod too many is cheaper than a failed reset.

Pods are the API's JSON objects (camelCase dicts), as the actuator reads them:

>>> pod = {"metadata": {"name": "p", "annotations": {"breakfix.io/gpu-indices": "2"}},
...        "spec": {"containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}
>>> gpu_indices(pod), uses_gpu(pod, 2), uses_gpu(pod, 3)
({2}, True, False)
"""

from __future__ import annotations

from typing import Any

Pod = dict[str, Any]

GPU_RESOURCE = "nvidia.com/gpu"
GPU_INDICES_ANNOTATION = "breakfix.io/gpu-indices"
VISIBLE_DEVICES_ENV = "NVIDIA_VISIBLE_DEVICES"


def _int_list(text: str) -> set[int] | None:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return {int(p) for p in parts}


def _containers(pod: Pod) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("containers") or [])


def requests_gpus(pod: Pod) -> bool:
    """True when any container asks for ``nvidia.com/gpu`` (requests or limits)."""
    for container in _containers(pod):
        res = container.get("resources") or {}
        if GPU_RESOURCE in (res.get("requests") or {}) or GPU_RESOURCE in (res.get("limits") or {}):
            return True
    return False


def gpu_indices(pod: Pod) -> set[int] | None:
    """The GPU indices a GPU pod uses, or None when they cannot be read (see the module doc)."""
    annotation = ((pod.get("metadata") or {}).get("annotations") or {}).get(GPU_INDICES_ANNOTATION)
    if annotation is not None:
        return _int_list(str(annotation))
    found: set[int] = set()
    for container in _containers(pod):
        for env in container.get("env") or []:
            if env.get("name") == VISIBLE_DEVICES_ENV and env.get("value"):
                indices = _int_list(str(env["value"]))
                if indices is None:
                    return None
                found |= indices
    return found or None


def uses_gpu(pod: Pod, index: int) -> bool:
    """True when the pod is a GPU pod that uses ``index`` or whose indices are unknown."""
    if not requests_gpus(pod):
        return False
    indices = gpu_indices(pod)
    return indices is None or index in indices
