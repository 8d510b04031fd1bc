"""Seed 001's autonomy table as data: what an agent may do alone, and what needs a person.

The API enforces it (the agent role's operations in ``breakfix.api.roles`` and the approval check on
execute); this table is what the MCP server tells the agent up front, in each tool's description and
annotations, and what it adds to a refusal so the agent knows which human step unblocks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Autonomy = Literal["autonomous read", "autonomous", "allowed", "needs a human", "HITL or canary-only"]


@dataclass(frozen=True)
class ToolPolicy:
    capability: str
    autonomy: Autonomy
    read_only: bool
    human_step: str = ""  # what a person does when the API refuses the agent


POLICIES: dict[str, ToolPolicy] = {
    "query_sql": ToolPolicy("read-only SQL over the audit store", "autonomous read", True),
    "get_metrics": ToolPolicy("Prometheus metrics of the API and pipeline", "autonomous read", True),
    "list_nodes": ToolPolicy("node state by pool/state", "autonomous read", True),
    "get_node": ToolPolicy("one node: state, evidence, decisions", "autonomous read", True),
    "list_runbooks": ToolPolicy("playbook catalog metadata", "autonomous read", True),
    "read_ticket": ToolPolicy("tickets by id or node", "autonomous read", True),
    "create_ticket": ToolPolicy("open an incident ticket", "autonomous", False),
    "close_ticket": ToolPolicy(
        "close an incident ticket",
        "needs a human",
        False,
        "a human closes it: `breakfix ticket close TICKET_ID --resolution ...`",
    ),
    "create_repair_plan": ToolPolicy("plan a repair (dry run or executable)", "allowed", False),
    "get_repair_plan": ToolPolicy("a plan: nodes, playbooks, risk, capacity", "autonomous read", True),
    "execute_repair_plan": ToolPolicy(
        "run a plan as planned",
        "HITL or canary-only",
        False,
        "a human approver runs `breakfix approve PLAN_ID` and hands you the token "
        "(or the playbook's approval is a canary list that includes every node)",
    ),
    "get_workflow": ToolPolicy("a running plan: step, events, errors", "autonomous read", True),
}


def describe(name: str, what: str) -> str:
    """A tool description that states its autonomy, so an agent plans around refusals."""
    policy = POLICIES[name]
    text = f"{what} Autonomy: {policy.autonomy}."
    if policy.human_step:
        text += f" When refused: {policy.human_step}."
    return text
