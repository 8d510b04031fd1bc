"""The recording as a whole: contract-valid line by line, deterministic to the byte, time-ordered."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from schemas.deadletter import DeadLetter
from schemas.recording import Validator, read_recording
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve

START = parse_start(DEFAULT_START)


def _cfg(nodes: int = 200, hours: float = 1.0, seed: int = 5) -> SimConfig:
    return SimConfig(nodes, hours, seed, START, [load_scenario(p) for p in resolve(["all"])])


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "rec.jsonl"
    simulate(_cfg(), out, out.with_suffix(".labels.jsonl"))
    return out


def test_every_line_passes_parse_and_gate(recording: Path) -> None:
    validator = Validator()
    dead = [x for x in read_recording(recording, validator) if isinstance(x, DeadLetter)]
    assert dead == []
    assert validator.stats.events["node.inventory"] == 200
    assert validator.stats.events["gpu.sample"] > 40_000
    for etype in (
        "agent.heartbeat",
        "node.condition",
        "scheduler.state",
        "change.event",
        "gpu.xid",
        "node.kernel",
    ):
        assert validator.stats.events[etype] > 0, etype


def test_inventory_first_and_times_monotone(recording: Path) -> None:
    seen: set[str] = set()
    last = ""
    ids: set[str] = set()
    for line in recording.read_bytes().splitlines():
        ev = orjson.loads(line)
        assert ev["time"] >= last  # RFC 3339 in UTC with Z sorts as text
        last = ev["time"]
        assert ev["id"] not in ids
        ids.add(ev["id"])
        if ev["node"] is not None:
            assert ev["type"] == "node.inventory" or ev["node"] in seen
            seen.add(ev["node"])


def test_same_arguments_same_bytes_also_gzip(tmp_path: Path) -> None:
    cfg = _cfg(nodes=120, hours=0.25, seed=9)
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    simulate(cfg, a, tmp_path / "a.labels")
    simulate(_cfg(nodes=120, hours=0.25, seed=9), b, tmp_path / "b.labels")
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.labels").read_bytes() == (tmp_path / "b.labels").read_bytes()
    assert gzip.decompress(a.read_bytes()).count(b"\n") > 10_000
    c = tmp_path / "c.jsonl.gz"
    simulate(_cfg(nodes=120, hours=0.25, seed=10), c)
    assert c.read_bytes() != a.read_bytes()
