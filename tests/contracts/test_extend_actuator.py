"""docs/extend/actuator.md followed step by step: a new actuator kind (a BMC power cycle, faked
here: it records the cycles it would send) is registered, configured with ``--actuator KIND=FILE``,
named by a playbook, run by the real workflow engine for a real decision, and passes the contract
suite every shipped actuator passes. If the page's recipe stops working, this fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actuators.base import PermanentError, StepContext, StepResult, StepSpec, ensure_allowed
from actuators.dispatch import Dispatcher
from actuators.playbooks import load_catalog
from actuators.registry import BuildContext, Kind, register, unregister
from actuators.workflow import Journal, WorkflowEngine
from breakfix.actuation import ActuatorOptions, build_actuators
from tests.contracts import test_actuators as contract
from tests.contracts.actuator_cases import Case, step
from tests.fakes.workflow_doubles import SwitchSafety, xid79_decision

# --- step 1: the actuator module (in the product: actuators/bmc.py) ----------------------------------


class BmcActuator:
    """Power-cycles a node through its BMC. The fake BMC is a list of the cycles it was sent."""

    name = "bmc"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.cycles: list[str] = []
        self._done: set[str] = set()

    def supports(self, operation: str) -> bool:
        return operation in BMC.operations

    def owns(self, node: str) -> bool:
        return False  # a power cycle leaves no hold behind

    def execute(self, step: StepSpec, ctx: StepContext) -> StepResult:
        if step.operation != "power_cycle":
            raise PermanentError(f"bmc actuator has no operation {step.operation!r}")
        ensure_allowed(ctx)  # the last-moment kill switch and exclusion check
        if ctx.idempotency_key in self._done:
            return StepResult(f"{ctx.node} already power-cycled", changed=False)
        self.cycles.append(ctx.node)
        self._done.add(ctx.idempotency_key)
        return StepResult(f"{ctx.node} power-cycled via {self.endpoint}")


def build(ctx: BuildContext) -> BmcActuator:
    """The builder ``--actuator bmc=FILE`` calls: the config file names the BMC endpoint."""
    if ctx.config is None:
        raise ValueError("bmc needs its config file: --actuator bmc=FILE")
    return BmcActuator(json.loads(ctx.config.read_text())["endpoint"])


# --- step 2: the registration (in the product: one Kind line in actuators/registry.py) -------------

BMC = Kind(
    "bmc",
    frozenset({"power_cycle"}),
    "configure --actuator bmc=FILE (JSON with the BMC endpoint)",
    build=f"{__name__}:build",
)

# --- step 3: the playbook that uses it (in the product: actuators/playbooks/catalog/bmc-power-cycle.yaml)

PLAYBOOK = """\
name: bmc-power-cycle
version: "1.0"
description: Power-cycle a node whose GPU fell off the bus, through its BMC.
failure_classes: [gpu_hardware]
actions: [gpu_reset]
steps:
  - {name: cycle, actuator: bmc, operation: power_cycle, mutating: true, timeout_s: 300}
"""


@pytest.fixture
def registered() -> Iterator[Kind]:
    register(BMC)
    yield BMC
    unregister("bmc")


def test_the_new_kind_is_configured_by_file_and_runs_its_playbook(registered: Kind, tmp_path: Path) -> None:
    config = tmp_path / "bmc.json"
    config.write_text(json.dumps({"endpoint": "https://bmc.example:443"}))
    wired = build_actuators(ActuatorOptions(plugins=(("bmc", config),)), strict=True)
    assert "bmc" in wired.kinds and "bmc" not in wired.unconfigured
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    (catalog_dir / "bmc-power-cycle.yaml").write_text(PLAYBOOK)
    events: list[dict[str, Any]] = []
    engine = WorkflowEngine(
        load_catalog(catalog_dir), wired.actuators, Journal(":memory:"), SwitchSafety(), events.append
    )
    handled = Dispatcher(engine, events.append, now=lambda: datetime.now(UTC)).handle(xid79_decision())
    bmc = next(a for a in wired.actuators if a.name == "bmc")
    assert handled.verdict == "succeeded" and handled.executed == ("cycle",), handled
    assert isinstance(bmc, BmcActuator) and bmc.cycles == ["gpu-node-1"]


def test_unregistered_the_playbook_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "bmc-power-cycle.yaml").write_text(PLAYBOOK)
    with pytest.raises(Exception, match="unknown actuator kind 'bmc'"):
        load_catalog(tmp_path)


def test_a_kind_configured_without_its_file_says_so(registered: Kind) -> None:
    from breakfix.actuation import ActuationConfigError

    with pytest.raises(ActuationConfigError, match="bmc needs its config file"):
        build_actuators(ActuatorOptions(plugins=(("bmc", None),)), strict=True)


def test_the_new_kind_passes_the_actuator_contract(registered: Kind) -> None:
    """Step 4 of the page: the kind's case in tests/contracts/actuator_cases.py; here it is run
    through the same checks directly."""
    case = Case(BmcActuator("https://bmc.example:443"), "gpu-node-1", step("bmc", "power_cycle"))
    contract.test_serves_its_registered_name_and_every_verb(case)
    contract.test_a_verb_it_lacks_is_refused_without_acting(case)
    contract.test_kill_switch_refuses_a_mutation_and_changes_nothing(case)
    fresh = Case(BmcActuator("https://bmc.example:443"), "gpu-node-1", step("bmc", "power_cycle"))
    contract.test_a_repeated_step_changes_nothing_the_second_time(fresh)


def test_the_stage_refuses_a_kind_nobody_registered_naming_those_that_are(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from breakfix.cli.main import app

    args = ["run", "--role", "actuators", "--state-dir", str(tmp_path)]
    res = CliRunner().invoke(app, [*args, "--actuator", "bmc=/etc/breakfix/bmc.json"])
    assert res.exit_code != 0 and "unknown actuator kind 'bmc'" in res.output
    assert "kubernetes" in res.output, "the refusal lists the registered kinds"
    res = CliRunner().invoke(app, [*args, "--actuator", "bmc="])
    assert res.exit_code != 0 and "--actuator KIND=FILE" in res.output
