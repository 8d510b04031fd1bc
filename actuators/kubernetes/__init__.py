"""Kubernetes actuator (official client): cordon/taint, PDB-respecting drain, per-GPU drain, uncordon."""

from actuators.kubernetes.actuator import OPERATIONS, KubernetesActuator, connect
from actuators.kubernetes.gpu_pods import GPU_INDICES_ANNOTATION, gpu_indices, uses_gpu
from actuators.kubernetes.marks import (
    CORDONED_ANNOTATION,
    DECISION_ANNOTATION,
    QUARANTINE_LABEL,
    REASON_ANNOTATION,
)

__all__ = [
    "CORDONED_ANNOTATION",
    "DECISION_ANNOTATION",
    "GPU_INDICES_ANNOTATION",
    "OPERATIONS",
    "QUARANTINE_LABEL",
    "REASON_ANNOTATION",
    "KubernetesActuator",
    "connect",
    "gpu_indices",
    "uses_gpu",
]
