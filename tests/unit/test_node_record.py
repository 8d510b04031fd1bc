"""A node's checkpoint record (policy.node_record): decoding gives back the runtime it encoded, records
of the former pickle formats and crafted pickles are refused without being loaded, and the record is
much smaller than the plain pickle it replaced."""

from __future__ import annotations

import pickle
from dataclasses import fields
from pathlib import Path
from typing import Any

import msgpack
import pytest

from detectors import hst_pack
from detectors.state import DetectState
from policy.engine import NodeRuntime
from policy.model import load_policy
from policy.node_record import MAGIC
from policy.record_codec import RecordRefused
from sim.replay import OfflineReplay
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve
from tests.unit.record_attack import attack, planted

LEGACY = Path(__file__).parent / "node_record_data" / "legacy_runtime.pkl"
"""Written by commit 429b212 (``NodeRuntime.to_bytes`` was a plain pickle of the runtime) for node
gpu-00005 of a 6-node, 45-minute simulated fleet: a record a worker upgraded from then would find."""
SCENARIOS = ("dbe-row-remap-failure", "xid79-fallen-off-bus", "thermal-fan-failure", "tenant-report",
             "repeat-offender", "silent-agent", "sbe-rising")  # fmt: skip


def simulated_fleet(tmp: Path, nodes: int = 40, hours: float = 1.5) -> Path:
    """A recording with faults that lead to decisions of several kinds (20 with these settings)."""
    rec = tmp / "fleet.jsonl"
    scenarios = [load_scenario(p) for p in resolve(list(SCENARIOS))]
    simulate(SimConfig(nodes, hours, 5, parse_start(DEFAULT_START), scenarios), rec)
    return rec


def comparable(rt: NodeRuntime) -> dict[str, Any]:
    """Every field of the runtime by value; the river model by what it learned (it has no equality)."""
    det = {f.name: getattr(rt.det, f.name) for f in fields(DetectState) if f.name != "window_model"}
    det |= {k: list(v.items()) for k, v in det.items() if isinstance(v, dict)}  # order counts
    w = rt.det.window_model
    window = (w.windows, w.acc_n, w.acc_temp, w.acc_temp_max, w.acc_power, w.acc_util)
    model = w.model if w.model is not None else hst_pack.unpack(w.packed) if w.packed else None
    learned = None if model is None else (hst_pack.pack(model), hst_pack.fingerprint(model))
    gate = (rt.gate.gpus, rt.gate.last_time, bytes(rt.gate.packed))
    return {"node": rt.node, "gate": gate, "det": det, "window": window, "model": learned,
            "life": rt.life, "placement": rt.placement, "next_tick": rt.next_tick}  # fmt: skip


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NodeRuntime]:
    replay = OfflineReplay(load_policy())
    for _ in replay.run(simulated_fleet(tmp_path_factory.mktemp("fleet"))):
        pass
    return replay.nodes


def test_decoding_gives_back_every_field(runtimes: dict[str, NodeRuntime]) -> None:
    assert any(rt.det.window_model.model is not None for rt in runtimes.values()), "models were built"
    assert any(rt.det.slots for rt in runtimes.values()) and any(
        rt.life.decision_id for rt in runtimes.values()
    )
    for rt in runtimes.values():
        assert comparable(NodeRuntime.from_bytes(rt.to_bytes())) == comparable(rt)


def test_record_is_values_only_and_a_third_of_the_plain_pickle(runtimes: dict[str, NodeRuntime]) -> None:
    for rt in runtimes.values():
        b = rt.to_bytes()
        assert b.startswith(MAGIC)
        msgpack.unpackb(b[len(MAGIC) :], ext_hook=_no_ext, strict_map_key=False)  # plain values only
        plain = pickle.dumps(rt, protocol=pickle.HIGHEST_PROTOCOL)  # already smaller: ids as digests
        assert len(b) < 0.6 * len(plain)


def _no_ext(code: int, data: bytes) -> None:
    raise AssertionError(f"extension type {code} in a record")


def test_records_of_the_former_pickle_formats_are_refused_not_loaded(tmp_path: Path) -> None:
    with pytest.raises(RecordRefused, match=r"a pickle .*never loaded"):
        NodeRuntime.from_bytes(LEGACY.read_bytes())
    format1 = b"NR\x01" + pickle.dumps(("gpu-1",), protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(RecordRefused, match=r"format 1 .*never loaded"):
        NodeRuntime.from_bytes(format1)


def test_the_crafted_pickle_does_run_code_when_unpickled(tmp_path: Path) -> None:
    """The attack the refusals below are tested with is real: plain ``pickle.loads`` runs it."""
    marker = tmp_path / "ran"
    pickle.loads(attack(marker))
    assert planted(marker)


@pytest.mark.parametrize("prefix", [b"", b"NR\x01", MAGIC], ids=["plain", "format-1", "current-magic"])
def test_a_crafted_pickle_record_runs_nothing(tmp_path: Path, prefix: bytes) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(RecordRefused):
        NodeRuntime.from_bytes(prefix + attack(marker))
    assert not planted(marker)


def test_corrupt_and_foreign_records_are_refused(runtimes: dict[str, NodeRuntime]) -> None:
    good = runtimes[sorted(runtimes)[0]].to_bytes()
    with pytest.raises(RecordRefused, match="corrupt node record"):
        NodeRuntime.from_bytes(good[: len(good) // 2])
    with pytest.raises(RecordRefused, match="malformed node record"):
        NodeRuntime.from_bytes(MAGIC + msgpack.packb(["gpu-1", "too", "few"]))
    with pytest.raises(RecordRefused, match="extension type"):
        NodeRuntime.from_bytes(MAGIC + msgpack.packb(msgpack.ExtType(7, b"x")))
    with pytest.raises(RecordRefused, match="not a current node record"):
        NodeRuntime.from_bytes(b'{"json": "instead"}')
    with pytest.raises(RecordRefused, match="not a current node record"):
        NodeRuntime.from_bytes(b"GR\x02" + good[len(MAGIC) :])  # a guard record's kind


CURRENT = Path(__file__).parent / "node_record_data" / "format2_runtime.bin"
"""A format-2 record as the node stage writes it (node gpu-00027 of ``simulated_fleet``: 14 evidence
slots, a decision, the window model built), committed when the format was introduced."""


def test_a_committed_format_2_record_still_reads_and_writes_back_byte_for_byte() -> None:
    """The layout of format 2 is fixed: a change must come with a new version byte (and records of
    the old one refused and rebuilt from input), never read one layout as another."""
    b = CURRENT.read_bytes()
    assert b.startswith(MAGIC)
    rt = NodeRuntime.from_bytes(b)
    assert rt.node == "gpu-00027" and len(rt.det.slots) == 14 and rt.life.decision_id
    assert rt.to_bytes() == b
