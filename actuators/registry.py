"""The actuator kind registry: every step kind a playbook may name, registered rather than enumerated.

Where this sits: a playbook step names its actuator kind (``StepSpec.actuator``); the catalog
accepts a kind only when it is registered here, and an operation only when that kind offers it, so a
typo fails when the catalog loads, naming the file and step, not at 3 a.m. mid-repair. The actuator
stage's wiring (``breakfix/actuation/wiring.py``) quotes each kind's ``hint`` when a playbook needs a
kind nobody configured, and builds any kind with a ``build`` entry point from
``breakfix run --role actuators --actuator KIND[=FILE]``; the simulated fleet acts out every kind.

A kind is light data: its name, its verbs, what configures it, and where its builder lives (imported
only when the kind is configured, so importing the registry never pulls in a Kubernetes or gRPC
client). Adding an actuator is one module with the actuator and its builder, one :class:`Kind` line
in :data:`_SHIPPED` (or a :func:`register` call from a plugin), and the playbook that uses it
(docs/extend/actuator.md).

>>> kind("kubernetes").operations >= {"cordon", "drain"}
True
>>> kind("teleport")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
KeyError: "unknown actuator kind 'teleport'; registered: health_override, kubernetes, nico, ..."
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actuators.base import Actuator


@dataclass(frozen=True)
class BuildContext:
    """What a kind's builder gets: its own config file (``--actuator KIND=FILE``; None when given
    bare), the broker it may need, and ``on_close`` to register the cleanup of what it opened."""

    config: Path | None
    broker: str | None
    topic_prefix: str
    on_close: Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class Kind:
    """One actuator kind. ``read_only``: verbs that never change infrastructure (the simulated fleet
    judges them against ground truth instead of recording a mutation). ``build``: ``"module:function"``
    taking a :class:`BuildContext` and returning the actuator, for kinds configured from one file
    (``--actuator KIND=FILE``); kinds wired from several options (a scheduler, the node agent's
    topic) leave it empty."""

    name: str
    operations: frozenset[str]
    hint: str
    read_only: frozenset[str] = frozenset()
    build: str = ""

    def builder(self) -> Callable[[BuildContext], Actuator]:
        """The builder function, imported now (it may import heavy client libraries)."""
        if not self.build:
            raise LookupError(f"actuator kind {self.name!r} is configured by its own options: {self.hint}")
        module, _, attr = self.build.partition(":")
        fn: Callable[[BuildContext], Actuator] = getattr(importlib.import_module(module), attr)
        return fn


_SHIPPED = (
    Kind(
        "kubernetes",
        frozenset({"cordon", "uncordon", "drain", "drain_gpu", "quarantine_gpu", "return_gpu"}),
        "configure --kube-url URL or --kubeconfig FILE (or run in-cluster with --kube)",
    ),
    Kind(
        "slurm",
        frozenset({"status", "drain", "resume", "reboot"}),
        "configure --slurm (scontrol, sinfo and squeue on PATH; --slurm-conf FILE)",
        read_only=frozenset({"status"}),
    ),
    Kind(
        "node_agent",
        frozenset({"gpu_reset", "reboot", "cleanup_stale", "collect_bundle", "dcgm_diag"}),
        "configure --node-agent (needs `breakfix node-agent` on the nodes and the breakfix.commands topic)",
        read_only=frozenset({"collect_bundle", "dcgm_diag"}),
    ),
    Kind(
        "ticket",
        frozenset({"create", "close"}),
        "configure --tickets DIR (built-in store) or --jira URL --jira-project KEY",
    ),
    Kind(
        "health_override",
        frozenset({"show", "set", "clear"}),
        "configure --machines DIR (machine records for health overrides)",
        read_only=frozenset({"show"}),
    ),
    Kind("validate", frozenset({"run"}), "always registered by the actuator stage", frozenset({"run"})),
    Kind(
        "nico",
        frozenset({"push_evidence", "request_repair", "claim", "finish", "escalate", "clear_evidence"}),
        "configure --nico FILE (NICo URL, org, core, repair tenant; JWT in BREAKFIX_NICO_TOKEN)",
        build="actuators.nico.connect:build",
    ),
)

_KINDS: dict[str, Kind] = {}


def register(k: Kind) -> Kind:
    """Register a kind; the same name twice is refused unless it is the very same declaration
    (a module imported twice), since two kinds under one name would run each other's steps."""
    if k.name in _KINDS and _KINDS[k.name] != k:
        raise ValueError(f"actuator kind {k.name!r} is already registered differently")
    _KINDS[k.name] = k
    return k


def kind(name: str) -> Kind:
    """The registered kind, or a KeyError that lists the registered ones."""
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown actuator kind {name!r}; registered: {', '.join(sorted(_KINDS))}") from None


def kinds() -> dict[str, Kind]:
    """Every registered kind by name (a copy: register through :func:`register`)."""
    return dict(_KINDS)


def hints() -> dict[str, str]:
    """Kind -> how to configure it, for kinds an operator configures (``validate`` always runs)."""
    return {k.name: k.hint for k in _KINDS.values() if k.name != "validate"}


def unregister(name: str) -> None:
    """Remove a kind (tests that register a fake one clean up after themselves)."""
    _KINDS.pop(name, None)


def check_kind(actuator: str) -> str:
    """Pydantic hook for ``StepSpec.actuator``: a registered kind, or a ValueError listing them
    (pydantic reports it with the step's location in the playbook)."""
    if actuator not in _KINDS:
        raise ValueError(f"unknown actuator kind {actuator!r}; registered: {', '.join(sorted(_KINDS))}")
    return actuator


def check_operation(actuator: str, operation: str) -> str:
    """Pydantic hook for ``StepSpec.operation``: one of the kind's verbs, or a ValueError listing them."""
    offered = _KINDS[actuator].operations
    if operation not in offered:
        raise ValueError(f"{actuator} has no operation {operation!r}; it offers {', '.join(sorted(offered))}")
    return operation


for _k in _SHIPPED:
    register(_k)
