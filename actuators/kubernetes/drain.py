"""PDB-respecting drain through the Eviction API, whole-node or only the pods on one GPU.

Each eviction the API server refuses with 429 (a PodDisruptionBudget allows no disruption now) is
retried every ``poll_s`` while the step's budget lasts: replacements becoming ready elsewhere raise
the budget again. When the budget runs out with pods still blocked, the step escalates. Deleting a
pod around its PDB happens only when the playbook says ``delete_on_pdb_block: true`` *and* the run
was approved by a person. DaemonSet pods, mirror (static) pods and finished pods are left alone, as
``kubectl drain`` does.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client import CoreV1Api, V1DeleteOptions, V1Eviction, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from actuators.base import Escalate, PermanentError, StepContext, StepResult, ensure_allowed
from actuators.kubernetes.gpu_pods import Pod, uses_gpu

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _evictable(pod: Pod) -> bool:
    meta = pod["metadata"]
    if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return False
    owners = meta.get("ownerReferences") or []
    return not any(ref.get("kind") == "DaemonSet" and ref.get("controller") for ref in owners)


def _key(pod: Pod) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def targets(core: CoreV1Api, node: str, gpu: int | None) -> list[Pod]:
    """Pods to move: every evictable pod on the node, or only those using ``gpu`` when one is given."""
    listed = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}")
    pods: list[Pod] = core.api_client.sanitize_for_serialization(listed)["items"]
    return [p for p in pods if _evictable(p) and (gpu is None or uses_gpu(p, gpu))]


def _evict(core: CoreV1Api, pod: Pod, grace_s: int) -> str:
    """'evicted', 'gone' or 'blocked: <why>'."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    body = V1Eviction(
        metadata=V1ObjectMeta(name=name, namespace=namespace),
        delete_options=V1DeleteOptions(grace_period_seconds=grace_s),
    )
    try:
        core.create_namespaced_pod_eviction(name, namespace, body)
    except ApiException as err:
        if err.status == 404:
            return "gone"
        if err.status == 429 or (err.status or 0) >= 500:
            return f"blocked: HTTP {err.status} {err.reason}"
        raise PermanentError(f"evicting {_key(pod)}: HTTP {err.status} {err.reason}") from err
    return "evicted"


def drain(
    core: CoreV1Api, ctx: StepContext, params: dict[str, Any], gpu: int | None, poll_s: float
) -> StepResult:
    """Evict the targets, waiting behind PDBs within the step's budget; escalate if still blocked."""
    grace_s = int(params.get("grace_period_s", 30))
    poll_s = float(params.get("poll_s", poll_s))
    pending = {_key(p): p for p in targets(core, ctx.node, gpu)}
    evicted: list[str] = []
    blocked: dict[str, str] = {}
    while pending:
        blocked = {}
        for key, pod in list(pending.items()):
            ensure_allowed(ctx)
            outcome = _evict(core, pod, grace_s)
            if outcome.startswith("blocked"):
                blocked[key] = outcome
                continue
            pending.pop(key)
            if outcome == "evicted":
                evicted.append(key)
        if not pending or ctx.remaining_s() <= poll_s:
            break
        time.sleep(poll_s)
    scope = f"GPU {gpu}" if gpu is not None else "node"
    outputs: dict[str, Any] = {"evicted": evicted, "blocked": sorted(blocked)}
    if pending:
        if params.get("delete_on_pdb_block") and ctx.approved:
            return _delete_around_pdb(core, ctx, pending, grace_s, evicted, outputs)
        raise Escalate(
            f"drain of {scope} blocked past its budget: {len(pending)} pod(s) protected by a "
            f"PodDisruptionBudget ({', '.join(sorted(pending))}); evicted {len(evicted)}; nothing deleted"
        )
    detail = f"drained {scope}: evicted {len(evicted)} pod(s)"
    return StepResult(detail=detail, changed=bool(evicted), outputs=outputs)


def _delete_around_pdb(
    core: CoreV1Api,
    ctx: StepContext,
    pending: dict[str, Pod],
    grace_s: int,
    evicted: list[str],
    outputs: dict[str, Any],
) -> StepResult:
    """The approved, playbook-requested override: delete what the PDB kept. Recorded in outputs."""
    deleted = []
    for key, pod in pending.items():
        ensure_allowed(ctx)
        try:
            meta = pod["metadata"]
            core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=grace_s)
        except ApiException as err:
            if err.status != 404:
                raise PermanentError(f"deleting {key}: HTTP {err.status}") from err
        deleted.append(key)
    outputs["deleted_around_pdb"] = deleted
    return StepResult(
        detail=f"evicted {len(evicted)} pod(s); deleted {len(deleted)} around their PDB with approval",
        outputs=outputs,
    )
