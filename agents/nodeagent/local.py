"""Node agents in the controller's own process: the command transport of single-host set-ups and tests."""

from __future__ import annotations

from actuators.base import PermanentError, TemporaryError
from agents.nodeagent.agent import NodeAgent
from schemas.actions import ActionRequest
from schemas.events import ActionResult


class LocalTransport:
    """Agents in this process (single-host setups, the demo, tests), keyed by node."""

    def __init__(self, agents: dict[str, NodeAgent]) -> None:
        self.agents = agents

    def request(self, req: ActionRequest, timeout_s: float) -> ActionResult:
        agent = self.agents.get(req.node)
        if agent is None:
            raise TemporaryError(f"no node agent for {req.node} is connected")
        result = agent.handle(req)
        if result is None:
            raise PermanentError(f"agent for {req.node} answered nothing")
        return result
