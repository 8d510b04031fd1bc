"""Each registered actuator kind's test parameters for the contract suite: how to build the real
actuator against the real component or the in-repo stand-in its integration tests use, which node
to act on, and one mutating step. A kind registered in ``actuators.registry`` without a case here
fails ``test_every_registered_kind_has_a_case``: a new actuator comes with its case."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actuators.base import Actuator, Safety, StepContext, StepSpec


@dataclass
class Case:
    """``mutating``: a step that changes infrastructure, or None for a read-only kind. ``guarded``:
    the kill switch must refuse it (a ticket to a person is the one mutation allowed under it).
    ``effects``: a snapshot of what the actuator changed, where the suite can read it, so a repeat
    is seen to change nothing. ``replays``: a repeated request is answered with the first result
    (the node agent's request-id cache) rather than reported as unchanged."""

    actuator: Actuator
    node: str
    mutating: StepSpec | None
    guarded: bool = True
    effects: Callable[[], object] | None = None
    replays: bool = False


def step(kind: str, operation: str, mutating: bool = True, **params: Any) -> StepSpec:
    return StepSpec(
        name=operation, actuator=kind, operation=operation, mutating=mutating, timeout_s=30, params=params
    )


def ctx(case: Case, safety: Safety, decision: str = "d-contract", step_name: str = "s") -> StepContext:
    return StepContext(
        decision_id=decision,
        node=case.node,
        step=step_name,
        playbook="contract",
        playbook_version="1.0",
        safety=safety,
        deadline=time.monotonic() + 30,
        gpu=0,
        failure_class="gpu_hardware",
        reasons=("Xid 79 on GPU 0: GPU has fallen off the bus",),
        approved=True,
    )


Factory = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[Case]]


@contextmanager
def kubernetes(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Case]:
    from actuators.kubernetes import KubernetesActuator, connect
    from tests.fakes.kube_apiserver import KubeApiServer

    with KubeApiServer() as server:
        server.add_node("gpu-node-1")
        yield Case(KubernetesActuator(connect(server.url)), "gpu-node-1", step("kubernetes", "cordon"))


@contextmanager
def slurm(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Case]:
    from actuators.commands import SubprocessRunner
    from actuators.slurm import SlurmActuator, SlurmClient

    cluster = request.getfixturevalue("slurm")  # the real slurmctld; skipped only where SLURM cannot run
    client = SlurmClient(SubprocessRunner({"SLURM_CONF": str(cluster.conf)}), timeout_s=10)
    yield Case(SlurmActuator(client, poll_s=0.2), "gpu01", step("slurm", "drain", wait=False))


@contextmanager
def node_agent(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Case]:
    from actuators.nodeagent import NodeAgentActuator
    from agents.nodeagent import LocalTransport, NodeAgent, SimulatedGpuOps

    resets: list[int] = []

    class Counting(SimulatedGpuOps):
        def reset(self, index: int, timeout_s: float) -> str:
            resets.append(index)
            return super().reset(index, timeout_s)

    agent = NodeAgent("n1", Counting(gpus=8), tmp / "bundles")
    act = NodeAgentActuator(LocalTransport({"n1": agent}))
    yield Case(act, "n1", step("node_agent", "gpu_reset"), effects=lambda: len(resets), replays=True)


@contextmanager
def ticket(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Case]:
    from actuators.tickets import JsonTicketStore, TicketActuator, TicketService

    store = JsonTicketStore(tmp / "tickets")
    act = TicketActuator(TicketService(store))

    def effects() -> object:
        found = store.find_open("n1")
        return found.model_dump() if found else None

    yield Case(act, "n1", step("ticket", "create", mutating=False), guarded=False, effects=effects)


@contextmanager
def health_override(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Case]:
    from actuators.health import HealthOverrideActuator, JsonMachineStore

    store = JsonMachineStore(tmp / "machines")
    act = HealthOverrideActuator(store, auto_repair_enabled=True)
    effects = lambda: store.get("m1")  # noqa: E731
    yield Case(act, "m1", step("health_override", "set", override="repair-request"), effects=effects)


@contextmanager
def validate(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Case]:
    from actuators.validation import Validator

    yield Case(Validator(), "n1", None)


@contextmanager
def nico(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Case]:
    from tests.fixtures.nico import start

    machine = "fm100ht4v4mce2qstjnl8970nnj3ie6ecek4mtjn27pea4kre5gsa49jg0g"
    for rig in start():
        rig.fake.add_machine(machine)
        yield Case(rig.actuator, machine, step("nico", "push_evidence"))


CASES: dict[str, Factory] = {
    "kubernetes": kubernetes,
    "slurm": slurm,
    "node_agent": node_agent,
    "ticket": ticket,
    "health_override": health_override,
    "validate": validate,
    "nico": nico,
}
