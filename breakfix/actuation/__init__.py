"""One wiring of the real actuators, shared by the actuator stage (``breakfix run --role actuators``)
and the HTTP API (``breakfix serve``), so a playbook runs against the same parts whichever started it.
"""

from breakfix.actuation.handler import engine_handler
from breakfix.actuation.wiring import (
    ActuationConfigError,
    ActuatorOptions,
    Wired,
    build_actuators,
    parse_plugin,
)

__all__ = [
    "ActuationConfigError",
    "ActuatorOptions",
    "Wired",
    "build_actuators",
    "engine_handler",
    "parse_plugin",
]
