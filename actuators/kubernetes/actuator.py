"""The Kubernetes actuator: cordon, drain, per-GPU drain and uncordon through the official client.

Operations (``StepSpec.operation``): ``cordon`` (taint + cordon + marks, see marks.py), ``drain``
(every evictable pod, PDB-respecting, see drain.py), ``drain_gpu`` (only the pods on the request's
GPU, see gpu_pods.py), ``uncordon`` (lift only our own marks), and the per-GPU pair
``quarantine_gpu``/``return_gpu``: on a cluster whose GPUs come from a DRA driver, a DeviceTaintRule
on that one device (dra.py; ``params.effect`` NoExecute by default, NoSchedule, or ``dry_run: true``
for the None effect) and its removal; elsewhere (device plugin) the per-GPU drain, and nothing to lift.
"""

from __future__ import annotations

from kubernetes import config
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException

from actuators.base import PermanentError, StepContext, StepResult, StepSpec, TemporaryError, ensure_allowed
from actuators.kubernetes.dra import DeviceTaints
from actuators.kubernetes.drain import drain
from actuators.kubernetes.marks import cordon, owns_cordon, read_node, uncordon
from actuators.registry import kind

OPERATIONS = kind("kubernetes").operations
"""This kind's verbs, as registered in ``actuators.registry`` (one list for playbooks and actuator)."""


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
        self.devices = DeviceTaints(api)
        self.poll_s = poll_s

    def supports(self, operation: str) -> bool:
        return operation in OPERATIONS

    def owns(self, node: str) -> bool:
        try:
            return owns_cordon(read_node(self.core, node)) or bool(self.devices.owned_on(node))
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
            if step.operation == "quarantine_gpu":
                return self._quarantine_gpu(step, ctx)
            if step.operation == "return_gpu":
                return self._return_gpu(ctx)
        except ApiException as err:  # anything the operations did not classify themselves
            if err.status in (429, 409) or (err.status or 0) >= 500:
                raise TemporaryError(f"{step.operation}: HTTP {err.status}") from err
            raise PermanentError(f"{step.operation}: HTTP {err.status} {err.reason}") from err
        raise PermanentError(f"unknown kubernetes operation {step.operation!r}")

    def _quarantine_gpu(self, step: StepSpec, ctx: StepContext) -> StepResult:
        gpu = _gpu(ctx, step.operation)
        dry = bool(step.params.get("dry_run"))
        device = self.devices.device(ctx.node, gpu)
        if device is None:  # device plugin: move the pods on that GPU, as drain_gpu does
            if dry:
                return StepResult(
                    f"dry run: would drain the pods on GPU {gpu} (device plugin)", changed=False
                )
            done = drain(self.core, ctx, step.params, gpu, self.poll_s)
            return StepResult(done.detail, done.changed, {**done.outputs, "path": "device_plugin"})
        effect = "None" if dry else str(step.params.get("effect", "NoExecute"))
        changed, detail = self.devices.taint(ctx.node, gpu, device, effect, ctx.failure_class or "quarantine")  # type: ignore[arg-type]
        return StepResult(detail, changed, {"path": "dra", "device": device.name, "effect": effect})

    def _return_gpu(self, ctx: StepContext) -> StepResult:
        gpu = _gpu(ctx, "return_gpu")
        if self.devices.version("devicetaintrules") is None:
            return StepResult("device plugin: no per-GPU hold to lift", changed=False)
        changed, detail = self.devices.lift(ctx.node, gpu)
        return StepResult(detail, changed)


def _gpu(ctx: StepContext, operation: str) -> int:
    if ctx.gpu is None:
        raise PermanentError(f"{operation} needs a GPU index on the request")
    return ctx.gpu
