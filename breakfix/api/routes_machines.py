"""The NICo surface of its repair manual: instance release (with issue report or repair status) and machine
records with their health overrides.

For sites without NICo: here the product itself plays the infrastructure controller. Where NICo
runs, NICo is the controller and the product is its repair system (actuators/nico,
docs/operate/nico.md); these routes are then not used."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from actuators.base import Refused
from actuators.health import OverrideKind
from breakfix.api.auth import principal
from breakfix.api.context import ApiContext
from breakfix.api.errors import ERRORS
from breakfix.api.machines import MachineNotFound, OverrideRequest, ReleaseRequest
from breakfix.api.params import PathId
from breakfix.api.plans import SERVING
from breakfix.api.tokens import Principal

Who = Annotated[Principal, Depends(principal)]


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter(prefix="/api/v1", responses=ERRORS)
    svc = ctx.machines

    def guarded(fn: Any, *args: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = fn(*args)
            return result
        except MachineNotFound as err:
            raise HTTPException(404, str(err)) from err
        except Refused as err:
            raise HTTPException(403, err.detail) from err

    def show(machine_id: str) -> dict[str, Any]:
        """The machine record with the node's state beside it: ``available`` is true only when no
        override holds the machine *and* the pipeline has not taken the node out of service, and
        ``unavailable_because`` says which holds it (an override, the node state, or both)."""
        from actuators.health.actuator import describe

        rec = describe(svc.record(machine_id))
        node = ctx.reader.node(machine_id, limit=1)
        held = not rec["available"]
        why = [f"health override {name}" for name in (rec.get("overrides") or {})] if held else []
        if node is not None:
            rec["node_state"] = node["state"]
            rec["failure_class"] = node.get("failure_class")
            if node["state"] not in SERVING:
                cause = f" ({node['failure_class']})" if node.get("failure_class") else ""
                why.append(f"node state {node['state']}{cause}")
        rec["available"] = not why
        rec["unavailable_because"] = why
        return rec

    @r.post("/instances/release", name="instances.release", response_model=dict[str, Any])
    def release(body: ReleaseRequest, who: Who) -> dict[str, Any]:
        return guarded(svc.release, body, who, ctx.now())

    @r.get("/machines/{machine_id}", name="machines.get", response_model=dict[str, Any])
    def machine(machine_id: PathId) -> dict[str, Any]:
        return guarded(show, machine_id)

    @r.get("/machines/{machine_id}/health-overrides", name="overrides.get", response_model=dict[str, Any])
    def overrides(machine_id: PathId) -> dict[str, Any]:
        from actuators.health.actuator import describe

        rec = guarded(lambda m: describe(svc.record(m)), machine_id)
        return {"machine": machine_id, "overrides": rec["overrides"], "available": rec["available"]}

    @r.post("/machines/{machine_id}/health-overrides", name="overrides.add", response_model=dict[str, Any])
    def add(machine_id: PathId, body: OverrideRequest, who: Who) -> dict[str, Any]:
        return guarded(svc.add, machine_id, body, who, ctx.now())

    @r.delete(
        "/machines/{machine_id}/health-overrides/{name}",
        name="overrides.remove",
        response_model=dict[str, Any],
    )
    def remove(machine_id: PathId, name: OverrideKind, who: Who) -> dict[str, Any]:
        return guarded(svc.remove, machine_id, name, who)

    return r
