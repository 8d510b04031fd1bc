"""The actuator stage's handler: decisions → dispatcher → workflow engine → the registered actuators.

The streams layer cannot import actuators (import-linter), so the stage is handed a factory that
builds the engine once it can emit results and read levers. The same factory serves real actuators
(``breakfix run --role actuators``) and simulated ones (``--simulate``, ``breakfix demo``); only the
actuator list differs. The journal under ``journal_path`` makes a restarted stage resume its runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from actuators import metrics as step_metrics
from actuators.base import Actuator
from actuators.dispatch import Dispatcher
from actuators.playbooks import Catalog, load_catalog
from actuators.workflow import Approver, Journal, NodeFacts, WorkflowEngine
from schemas.decision import Decision
from streams.actuation.stage import ControlState, Emit, Handler, MakeHandler


def engine_handler(
    actuators: Iterable[Actuator],
    journal_path: Path,
    *,
    facts: NodeFacts | None = None,
    unconfigured: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    before: Callable[[Decision], None] | None = None,
) -> MakeHandler:
    """``before`` sees each decision first (the demo's fleet clock keeps up with decision times)."""
    acts = list(actuators)
    journal_path.parent.mkdir(parents=True, exist_ok=True)

    def make(emit: Emit, control: ControlState) -> Handler:
        playbooks = catalog or load_catalog()
        step_metrics.initialise(playbooks)  # every step's histogram at zero from the first scrape
        engine = WorkflowEngine(
            playbooks,
            acts,
            Journal(journal_path),
            control,
            emit,
            facts=facts,
            now=now,
            unconfigured=unconfigured,
        )
        dispatcher = Dispatcher(engine, emit, now=now)

        def handle(decision: Decision, levers: ControlState) -> str:
            if before is not None:
                before(decision)
            approvers = tuple(Approver(actor, role) for actor, role in levers.approvers(decision))
            return dispatcher.handle(decision, levers.pool_of(decision.node), approvers).verdict

        return handle

    return make
