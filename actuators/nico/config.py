"""What the product needs to act as NICo's repair system: where NICo is, and the repair tenant.

The repair tenant is a NICo tenant with targeted instance creation enabled; its VPC, VPC prefix and
operating system are what a repair instance boots with (NICo's repair tenant workflow lists the same
values). The token is a JWT for that tenant's admin role; it is read from the environment, never
from a file in the repository or a command line that ``ps`` would show.
"""

from __future__ import annotations

from dataclasses import dataclass

from actuators.base import OWNER


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
