"""NICo-style health overrides on a machine record store (the release/repair semantics of NICo's
repair manual)."""

from actuators.health.actuator import HealthOverrideActuator
from actuators.health.model import HealthOverride, Issue, MachineRecord, OverrideKind
from actuators.health.store import JsonMachineStore, MachineStore

__all__ = [
    "HealthOverride",
    "HealthOverrideActuator",
    "Issue",
    "JsonMachineStore",
    "MachineRecord",
    "MachineStore",
    "OverrideKind",
]
