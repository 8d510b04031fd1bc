"""A simulated fleet for the local stack: its last hour of telemetry, fed live into the broker.

The hour ends now, so the events are current (the node stage judges results and ticks by event
time, and the API's simulated actuators stamp results with the wall clock). Two shipped scenarios
give the fleet something to look at: GPUs fallen off the bus (Xid 79, ``gpu_hardware``) and a
failed fan (``thermal_power``), plus ordinary noise.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from breakfix.demo.feed import feed
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve
from streams.settings import StreamSettings

SCENARIOS = ("xid79-fallen-off-bus", "thermal-fan-failure", "noise")
HOURS = 1.0


def feed_fleet(settings: StreamSettings, work: Path, nodes: int, seed: int) -> int:
    """Simulate ``nodes`` over the last hour and publish it at once; returns the events fed."""
    start = int(time.time() - HOURS * 3600)
    scenarios = [load_scenario(p) for p in resolve(list(SCENARIOS))]
    rec = work / "fleet.jsonl"
    simulate(SimConfig(nodes=nodes, hours=HOURS, seed=seed, start=start, scenarios=scenarios), rec,
             work / "fleet-labels.jsonl")  # fmt: skip
    stats = asyncio.run(feed(rec, settings, float(start), time.time(), speed=1e9))
    return stats.lines
