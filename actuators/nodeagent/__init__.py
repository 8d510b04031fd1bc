"""Node-agent commands: GPU reset, reboot, dcgmi diag, diagnostic bundle, stale-state cleanup."""

from actuators.nodeagent.actuator import CommandTransport, LocalTransport, NodeAgentActuator
from agents.nodeagent.agent import NodeAgent
from agents.nodeagent.gpu import GpuOps, NoGpuError, NvidiaGpuOps, SimulatedGpuOps

__all__ = [
    "CommandTransport",
    "GpuOps",
    "LocalTransport",
    "NoGpuError",
    "NodeAgent",
    "NodeAgentActuator",
    "NvidiaGpuOps",
    "SimulatedGpuOps",
]
