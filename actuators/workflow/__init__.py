"""Workflow engine: runs playbooks for decisions through registered actuators, journaled and resumable."""

from actuators.workflow.engine import NodeFacts, Outcome, RetryBudget, WorkflowEngine
from actuators.workflow.journal import Journal
from actuators.workflow.request import Approver, NotExecutable, WorkRequest, approval_met, from_decision
from actuators.workflow.results import Emitter, action_result

__all__ = [
    "Approver",
    "Emitter",
    "Journal",
    "NodeFacts",
    "NotExecutable",
    "Outcome",
    "RetryBudget",
    "WorkRequest",
    "WorkflowEngine",
    "action_result",
    "approval_met",
    "from_decision",
]
