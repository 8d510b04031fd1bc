"""NICo-style health overrides on a machine record store (seed 002's release/repair semantics)."""

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
