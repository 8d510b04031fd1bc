"""A node's checkpoint record (policy.node_record): decoding gives back the runtime it encoded, records
written in the former format (a plain pickle) are still read, and the new record is much smaller."""

from __future__ import annotations

import pickle
import pickletools
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from breakfix.replay import OfflineReplay
from breakfix.simulate.clock import DEFAULT_START, parse_start
from breakfix.simulate.engine import SimConfig, simulate
from breakfix.simulate.scenario import load_scenario, resolve
from detectors import hst_pack
from detectors.state import DetectState
from policy.engine import NodeRuntime
from policy.model import load_policy
from policy.node_record import MAGIC
from schemas.gate import id_hash

LEGACY = Path(__file__).parent / "node_record_data" / "legacy_runtime.pkl"
"""Written by commit 429b212 (``NodeRuntime.to_bytes`` was a plain pickle of the runtime) for node
gpu-00005 of a 6-node, 45-minute simulated fleet: 237 remembered ids, 3 slots, window model built."""
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
    rt = runtimes[sorted(runtimes)[0]]
    b = rt.to_bytes()
    assert b.startswith(MAGIC)
    ops = {op.name for op, _, _ in pickletools.genops(b[len(MAGIC) :])}
    assert not ops & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "NEWOBJ"}, "no class paths, no objects"
    for rt in runtimes.values():
        plain = pickle.dumps(rt, protocol=pickle.HIGHEST_PROTOCOL)  # already smaller: ids as digests
        assert len(rt.to_bytes()) < 0.6 * len(plain)


def test_record_written_by_the_former_format_is_read() -> None:
    raw = LEGACY.read_bytes()
    assert raw.startswith(b"\x80"), "the fixture is a plain pickle"
    old = pickle.loads(raw)  # the former in-memory form: ids as strings
    assert len(old.gate.ids) == 237 and all(isinstance(i, str) for i in old.gate.ids)
    rt = NodeRuntime.from_bytes(raw)
    assert list(rt.gate.digests()) == [id_hash(i) for i in old.gate.ids]
    assert (rt.node, rt.gate.gpus, rt.gate.last_time) == (old.node, old.gate.gpus, old.gate.last_time)
    assert (rt.life, rt.placement, rt.next_tick) == (old.life, old.placement, old.next_tick)
    model = rt.det.window_model.model
    assert model is not None and hst_pack.pack(model) == hst_pack.pack(old.det.window_model.model)
    # The upgraded runtime is written in the new format and reads back the same.
    again = NodeRuntime.from_bytes(rt.to_bytes())
    assert comparable(again) == comparable(rt)
    assert len(rt.to_bytes()) < len(raw) / 3


def test_a_value_that_is_no_record_is_refused() -> None:
    with pytest.raises(ValueError, match="not a node record"):
        NodeRuntime.from_bytes(b'{"json": "instead"}')
