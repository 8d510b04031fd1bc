"""NVIDIA's NCX Infra Controller (NICo) as a quarantine and repair target: the product as NICo's repair
system. REST for machines, instances and labels (:mod:`.rest`), the core's health-report calls over
gRPC (:mod:`.health`, :mod:`.proto`), the repair verbs as an actuator (:mod:`.actuator`) and the poll
that turns NICo's repair requests into pipeline input (:mod:`.poller`)."""

from actuators.nico.actuator import NicoActuator
from actuators.nico.config import NicoConfig, RepairTenant
from actuators.nico.health import GrpcHealthReports, HealthReports
from actuators.nico.poller import NicoPoller
from actuators.nico.rest import NicoRest

__all__ = [
    "GrpcHealthReports",
    "HealthReports",
    "NicoActuator",
    "NicoConfig",
    "NicoPoller",
    "NicoRest",
    "RepairTenant",
]
