"""What the product needs to act as NICo's repair system: where NICo is, and the repair tenant.

The repair tenant is a NICo tenant with targeted instance creation enabled; its VPC, VPC prefix and
operating system are what a repair instance boots with (NICo's repair tenant workflow lists the same
values). The JWT for that tenant's admin role comes from the environment (``BREAKFIX_NICO_TOKEN``),
never from the file or a command line that ``ps`` would show. The file (``--nico FILE``)::

    url: https://nico-rest-api.nico.svc.cluster.local
    org: acme-repair
    api_name: nico                       # older deployments: their api.name path segment
    grpc: carbide-api.nico.svc.cluster.local:1079   # the core, for health reports
    repair_tenant:
      tenant_id: 6f1c0f0e-...            # UUIDs from NICo
      vpc_id: ...
      vpc_prefix_id: ...
      operating_system_id: ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actuators.base import OWNER

TOKEN_ENV = "BREAKFIX_NICO_TOKEN"


@dataclass(frozen=True)
class RepairTenant:
    tenant_id: str
    vpc_id: str
    vpc_prefix_id: str
    operating_system_id: str


@dataclass(frozen=True)
class NicoConfig:
    url: str
    """REST base URL, e.g. https://nico-rest-api.nico.svc.cluster.local"""
    org: str
    token: str
    tenant: RepairTenant
    api_name: str = "nico"
    """Path segment after the org (NICo's ``api.name`` setting); older deployments use another."""
    grpc_target: str | None = None
    """host:port of NICo's core (carbide-api) for health reports; None: health reports unavailable."""
    grpc_tls: bool = True
    source: str = OWNER
    """The health-report source the product writes its evidence under, and the only one it removes."""
    site_id: str | None = None
    max_wait_s: float = 3600.0
    """A repair request unclaimed this long is alerted (NICo's "repair never picked up")."""


_Id = Annotated[
    str, Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
]
"""NICo's tenant, VPC, VPC prefix and operating system ids are UUIDs (its OpenAPI document says so)."""


class _TenantFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: _Id
    vpc_id: _Id
    vpc_prefix_id: _Id
    operating_system_id: _Id


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, Field(pattern=r"^https?://")]
    org: Annotated[str, Field(min_length=1, max_length=256)]
    api_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")] = "nico"
    grpc: str | None = None
    grpc_tls: bool = True
    source: Annotated[str, Field(min_length=1, max_length=64)] = OWNER
    site_id: str | None = None
    max_wait_s: Annotated[float, Field(gt=0)] = 3600.0
    repair_tenant: _TenantFile


class NicoConfigError(ValueError):
    """The file or the environment is wrong; the message names the key or variable to fix."""


def load_config(path: Path, env: dict[str, str] | None = None) -> NicoConfig:
    environ = os.environ if env is None else env
    token = environ.get(TOKEN_ENV, "")
    if not token:
        raise NicoConfigError(f"set {TOKEN_ENV} to the repair tenant's JWT (NICo's bearer token)")
    try:
        raw: Any = yaml.safe_load(path.read_text())
        f = _File.model_validate(raw)
    except OSError as err:
        raise NicoConfigError(f"{path}: {err.strerror}") from err
    except ValidationError as err:
        each = [
            "{}: {}".format(".".join(str(p) for p in e["loc"]) or "(top)", e["msg"]) for e in err.errors()
        ]
        raise NicoConfigError(f"{path}: {'; '.join(each)}") from err
    t = f.repair_tenant
    return NicoConfig(
        url=f.url,
        org=f.org,
        token=token,
        tenant=RepairTenant(t.tenant_id, t.vpc_id, t.vpc_prefix_id, t.operating_system_id),
        api_name=f.api_name,
        grpc_target=f.grpc,
        grpc_tls=f.grpc_tls,
        source=f.source,
        site_id=f.site_id,
        max_wait_s=f.max_wait_s,
    )
