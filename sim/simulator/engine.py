"""The simulation loop: tick by tick, merge background and injected events in time order, assign
ids in file order and stream JSON lines to the output. Memory is one tick's events, whatever the run.

Deterministic: the same arguments give the same bytes (numpy's generator is seeded, choices are
hashed, gzip is written with a zero mtime and no file name).
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import orjson

from sim.simulator.background import TICK_S, Background
from sim.simulator.faults.base import Fault, Timed, event
from sim.simulator.fleet import build_fleet
from sim.simulator.labels import Label, write_labels
from sim.simulator.noise_model import NoiseRates
from sim.simulator.scenario import Scenario, build

Progress = Callable[[int], None]


def _order(item: Timed) -> tuple[int, str]:
    """(time, node): node-less events first in their second; a node's own events keep their order
    (the sort is stable), so its inventory still comes before its first sample."""
    return item[0], item[1].get("node") or ""


@dataclass
class SimConfig:
    nodes: int
    hours: float
    seed: int
    start: int
    scenarios: list[Scenario] = field(default_factory=list)
    gzip_level: int = 3
    noise: NoiseRates | None = field(default_factory=NoiseRates)
    """A real fleet's everyday background (``sim.simulator.noise_model``); None: silent healthy nodes."""


@dataclass
class SimResult:
    events: int = 0
    bytes: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    labels: list[Label] = field(default_factory=list)
    ticks: int = 0


def open_output(path: str | Path, level: int) -> IO[bytes]:
    """Plain or gzip (by suffix); gzip without mtime or name so the bytes depend only on the content."""
    raw = open(path, "wb")  # noqa: SIM115 - closed by the caller through the returned object
    if str(path).endswith(".gz"):
        return cast(
            IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0)
        )
    return raw


def ticks_of(cfg: SimConfig) -> int:
    return max(1, int(cfg.hours * 3600) // TICK_S)


def simulate(
    cfg: SimConfig, out: str | Path, labels_out: str | Path | None = None, progress: Progress | None = None
) -> SimResult:
    fleet = build_fleet(cfg.nodes)
    n_ticks = ticks_of(cfg)
    end = cfg.start + n_ticks * TICK_S
    injection = build(cfg.scenarios, fleet, cfg.seed, cfg.start, end)
    faults = injection.faults
    background = Background(fleet, cfg.seed, cfg.noise)
    result = SimResult(
        labels=sorted((lb for f in faults for lb in f.labels()), key=lambda lb: (lb.start, lb.id))
    )
    prefix = f"sim{cfg.seed}-"
    seq = 0
    f = open_output(out, cfg.gzip_level)
    raw = cast(IO[bytes], getattr(f, "fileobj", None) or f)
    try:
        first: list[Timed] = [
            event(cfg.start, "node.inventory", "inventory", n.name, n.inventory()) for n in fleet.nodes
        ]
        for k in range(n_ticks):
            t0 = k * TICK_S + cfg.start
            t1 = t0 + TICK_S
            active = [x for x in faults if x.active(t0, t1)]
            muted: set[tuple[str, int]] = set()
            patch: dict[int, list[Fault]] = {}
            extra: list[Timed] = []
            for x in active:
                muted.update(x.muted(t0, t1))
                for i in x.patched(t0, t1):
                    patch.setdefault(i, []).append(x)
                extra.extend(x.events(t0, t1))
            batch = first + background.tick(k, t0, muted, patch) + extra
            first = []
            batch.sort(key=_order)
            lines = []
            for _, ev in batch:
                ev["id"] = prefix + format(seq, "x")
                seq += 1
                result.by_type[ev["type"]] += 1
                lines.append(orjson.dumps(ev))
            lines.append(b"")
            f.write(b"\n".join(lines))
            if progress is not None:
                progress(1)
        result.ticks = n_ticks
    finally:
        f.close()
        if raw is not f:
            raw.close()
    result.events = seq
    result.bytes = Path(out).stat().st_size
    if labels_out is not None:
        write_labels(labels_out, result.labels)
    return result
