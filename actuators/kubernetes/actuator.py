"""The Kubernetes actuator: cordon, drain, per-GPU drain and uncordon through the official client.

Operations (``StepSpec.operation``): ``cordon`` (taint + cordon + marks, see marks.py), ``drain``
(every evictable pod, PDB-respecting, see drain.py), ``drain_gpu`` (only the pods on the request's
GPU, see gpu_pods.py), ``uncordon`` (lift only our own marks).
"""

from __future__ import annotations

from kubernetes import config
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException

from actuators.base import PermanentError, StepContext, StepResult, StepSpec, TemporaryError, ensure_allowed
from actuators.kubernetes.drain import drain
from actuators.kubernetes.marks import cordon, owns_cordon, read_node, uncordon

OPERATIONS = frozenset({"cordon", "uncordon", "drain", "drain_gpu"})


def connect(host: str | None = None) -> ApiClient:
    """An API client for ``host`` (no auth, e.g. a local stand-in or ``kubectl proxy``), else the
    in-cluster service account, else the user's kubeconfig."""
    if host:
        cfg = Configuration()
        cfg.host = host
        return ApiClient(cfg)
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return ApiClient()


class KubernetesActuator:
    name = "kubernetes"

    def __init__(self, api: ApiClient, poll_s: float = 2.0) -> None:
        self.core = CoreV1Api(api)
        self.poll_s = poll_s

    def supports(self, operation: str) -> bool:
        return operation in OPERATIONS

    def owns(self, node: str) -> bool:
        try:
            return owns_cordon(read_node(self.core, node))
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if step.mutating:
            ensure_allowed(ctx)
        try:
            if step.operation == "cordon":
                return cordon(self.core, ctx)
            if step.operation == "uncordon":
                return uncordon(self.core, ctx)
            if step.operation == "drain":
                return drain(self.core, ctx, step.params, None, self.poll_s)
            if step.operation == "drain_gpu":
                if ctx.gpu is None:
                    raise PermanentError("drain_gpu needs a GPU index on the request")
                return drain(self.core, ctx, step.params, ctx.gpu, self.poll_s)
        except ApiException as err:  # anything the operations did not classify themselves
            if err.status in (429, 409) or (err.status or 0) >= 500:
                raise TemporaryError(f"{step.operation}: HTTP {err.status}") from err
            raise PermanentError(f"{step.operation}: HTTP {err.status} {err.reason}") from err
        raise PermanentError(f"unknown kubernetes operation {step.operation!r}")
