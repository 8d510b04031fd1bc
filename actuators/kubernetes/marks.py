"""Cordon and uncordon with reason ownership: what we set is recorded on the node, and only that is
ever lifted.

Marks this product puts on a node (and the only ones it removes):

- the taint ``breakfix.io/quarantine=<failure class>:NoSchedule`` (our own key);
- the label ``breakfix.io/quarantined=true`` and the annotations ``breakfix.io/decision-id`` and
  ``breakfix.io/reason``;
- ``spec.unschedulable=true`` *only when it was false before*, recorded by the annotation
  ``breakfix.io/cordoned=true``. A node an operator had already cordoned carries no such annotation,
  so our uncordon leaves it cordoned; an operator's own taints are never touched.

Every write carries the resourceVersion it read, so a concurrent writer makes it fail with 409 and
it is recomputed from a fresh read (a merge patch replaces the whole taint list, so writing from a
stale read could drop someone else's taint).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from actuators.base import (
    TAINT_KEY,
    Escalate,
    PermanentError,
    StepContext,
    StepResult,
    TemporaryError,
    ensure_allowed,
)

QUARANTINE_LABEL = "breakfix.io/quarantined"
DECISION_ANNOTATION = "breakfix.io/decision-id"
REASON_ANNOTATION = "breakfix.io/reason"
CORDONED_ANNOTATION = "breakfix.io/cordoned"
MERGE_PATCH = "application/merge-patch+json"
CONFLICT_RETRIES = 5


def _taint_value(failure_class: str) -> str:
    """Taint values follow label-value syntax (63 characters, alphanumerics and ``-_.``)."""
    value = re.sub(r"[^A-Za-z0-9_.\-]", "-", failure_class)[:63].strip("-_.")
    return value or "unspecified"


Node = dict[str, Any]


def read_node(core: CoreV1Api, name: str) -> Node:
    """The node as the API's JSON (camelCase dict): what a patch is computed from and written as."""
    node: Node = core.api_client.sanitize_for_serialization(core.read_node(name))
    return node


def _taints(node: Node) -> list[dict[str, Any]]:
    return [dict(t) for t in (node.get("spec") or {}).get("taints") or []]


def _annotations(node: Node) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("annotations") or {})


def _unschedulable(node: Node) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def owns_cordon(node: Node) -> bool:
    """True when the node's cordon or taint was set by this product."""
    ours_taint = any(t["key"] == TAINT_KEY for t in _taints(node))
    return ours_taint or _annotations(node).get(CORDONED_ANNOTATION) == "true"


def _write(
    core: CoreV1Api, ctx: StepContext, build: Callable[[Node], tuple[dict[str, Any] | None, str]]
) -> StepResult:
    """Read, build a patch from what was read, write it conditionally; retry on 409 with a fresh read.
    ``build`` returns (None, detail) when nothing needs changing."""
    for _ in range(CONFLICT_RETRIES):
        try:
            node = read_node(core, ctx.node)
        except ApiException as err:
            if err.status == 404:
                raise PermanentError(f"node {ctx.node} not found") from err
            raise TemporaryError(f"reading node {ctx.node}: HTTP {err.status}") from err
        patch, detail = build(node)
        if patch is None:
            return StepResult(detail=detail, changed=False)
        patch.setdefault("metadata", {})["resourceVersion"] = node["metadata"]["resourceVersion"]
        ensure_allowed(ctx)  # the very last moment before the write
        try:
            core.patch_node(ctx.node, patch, _content_type=MERGE_PATCH)
        except ApiException as err:
            if err.status == 409:
                continue
            raise TemporaryError(f"patching node {ctx.node}: HTTP {err.status}") from err
        return StepResult(detail=detail, changed=True)
    raise TemporaryError(f"node {ctx.node} kept changing under us ({CONFLICT_RETRIES} conflicts)", 0.2)


def cordon(core: CoreV1Api, ctx: StepContext) -> StepResult:
    """Taint, label and annotate the node, and cordon it unless an operator already had."""

    def build(node: Node) -> tuple[dict[str, Any] | None, str]:
        taints = _taints(node)
        annotations = _annotations(node)
        unschedulable = _unschedulable(node)
        has_taint = any(t["key"] == TAINT_KEY for t in taints)
        if has_taint and unschedulable and annotations.get(DECISION_ANNOTATION) == ctx.decision_id:
            return None, "already quarantined by this decision"
        held_by = annotations.get(DECISION_ANNOTATION)
        if has_taint and held_by and held_by != ctx.decision_id:
            raise Escalate(f"node {ctx.node} is already quarantined by decision {held_by}")
        if not has_taint:
            value = _taint_value(ctx.failure_class)
            taints.append({"key": TAINT_KEY, "value": value, "effect": "NoSchedule"})
        marks = {DECISION_ANNOTATION: ctx.decision_id, REASON_ANNOTATION: "; ".join(ctx.reasons)[:1024]}
        spec: dict[str, Any] = {"taints": taints}
        detail = "tainted and cordoned"
        if not unschedulable:
            spec["unschedulable"] = True
            marks[CORDONED_ANNOTATION] = "true"
        elif annotations.get(CORDONED_ANNOTATION) != "true":
            detail = "tainted; the node was already cordoned by someone else (their cordon stays theirs)"
        patch = {"metadata": {"labels": {QUARANTINE_LABEL: "true"}, "annotations": marks}, "spec": spec}
        return patch, detail

    return _write(core, ctx, build)


def uncordon(core: CoreV1Api, ctx: StepContext) -> StepResult:
    """Lift only our marks: our taint, our label and annotations, and the cordon if we set it."""

    def build(node: Node) -> tuple[dict[str, Any] | None, str]:
        taints = _taints(node)
        annotations = _annotations(node)
        held_by = annotations.get(DECISION_ANNOTATION)
        if held_by and held_by != ctx.decision_id:
            raise Escalate(f"node {ctx.node} is held by another decision ({held_by}); not lifting it")
        kept = [t for t in taints if t["key"] != TAINT_KEY]
        we_cordoned = annotations.get(CORDONED_ANNOTATION) == "true"
        if len(kept) == len(taints) and not we_cordoned and not held_by:
            return None, "nothing of ours on the node"
        spec: dict[str, Any] = {"taints": kept}
        if we_cordoned:
            spec["unschedulable"] = None
        gone = dict.fromkeys((DECISION_ANNOTATION, REASON_ANNOTATION, CORDONED_ANNOTATION))
        patch = {"metadata": {"labels": {QUARANTINE_LABEL: None}, "annotations": gone}, "spec": spec}
        unschedulable = _unschedulable(node)
        if we_cordoned or not unschedulable:
            return patch, "untainted and uncordoned"
        return patch, "untainted; the operator's own cordon stays"

    return _write(core, ctx, build)
