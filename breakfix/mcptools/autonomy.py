"""The autonomy table as data: what an agent may do alone, and what needs a person.

The API enforces it (the agent role's operations in ``breakfix.api.roles`` and the approval check on
execute); each operation's ``Tool`` entry in ``breakfix.api.operations`` declares it, and
this table is what the MCP server tells the agent up front, in each tool's description and
annotations, and what it adds to a refusal so the agent knows which human step unblocks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from breakfix.api.operations import OPERATIONS, Autonomy


@dataclass(frozen=True)
class ToolPolicy:
    capability: str
    autonomy: Autonomy
    read_only: bool
    human_step: str = ""  # what a person does when the API refuses the agent


METRICS = ToolPolicy("Prometheus metrics of the API and pipeline", "autonomous read", True)
"""``get_metrics``: the one tool that is no operation (the metrics endpoint every scraper reads)."""


def policies() -> dict[str, ToolPolicy]:
    """Tool -> its autonomy, read from the operations as they are registered now (an operation
    added later, a plugin's, is described like the shipped ones)."""
    table = {
        op.tool.name: ToolPolicy(op.tool.capability, op.tool.autonomy, op.read_only, op.tool.human_step)
        for op in OPERATIONS.values()
        if op.tool is not None
    }
    return table | {"get_metrics": METRICS}


def describe(name: str, what: str) -> str:
    """A tool description that states its autonomy, so an agent plans around refusals."""
    policy = policies()[name]
    text = f"{what} Autonomy: {policy.autonomy}."
    if policy.human_step:
        text += f" When refused: {policy.human_step}."
    return text
