"""The node agent: verifies the actuator stage's signed commands and runs them on its node."""

from agents.nodeagent.agent import NodeAgent
from agents.nodeagent.gpu import GpuOps, NoGpuError, NvidiaGpuOps, SimulatedGpuOps
from agents.nodeagent.local import LocalTransport

__all__ = ["GpuOps", "LocalTransport", "NoGpuError", "NodeAgent", "NvidiaGpuOps", "SimulatedGpuOps"]
