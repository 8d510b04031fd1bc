"""Node-agent commands from the controller's side: a playbook step becomes a command to the node's agent."""

from actuators.nodeagent.actuator import CommandTransport, NodeAgentActuator

__all__ = ["CommandTransport", "NodeAgentActuator"]
