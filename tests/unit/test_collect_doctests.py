"""The collectors' docstring examples are part of their documentation: run them."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from actuators.slurm import node_text
from breakfix.collect import dcgm, gpu_fields, heartbeat, inventory, kmsg, kube, slurm
from schemas import clock_events, gpu_recovery
from streams import producer


@pytest.mark.parametrize(
    "module",
    [
        clock_events,
        gpu_recovery,
        dcgm,
        gpu_fields,
        heartbeat,
        inventory,
        kmsg,
        kube,
        slurm,
        producer,
        node_text,
    ],
    ids=lambda m: m.__name__,
)
def test_doctests(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0
