"""Size and encode/decode cost of a node's checkpointed state record: the current format against the
format it replaced, on the same runtimes, in one run.

Usage: python -m bench.bench_node_record [--nodes 200] [--hours 3] [--seed 5] [--rounds 5]

A simulated fleet is replayed offline for a few hours of event time; every node's runtime is then
encoded as the node stage checkpoints it (``NodeRuntime.to_bytes``, then base64 inside the table's
JSON value) and decoded as a restart restores it. The baseline is the record as written before the
compact format: a plain pickle of the whole runtime, the gate's event-id memory held as strings
(rebuilt from the recording, and checked against the runtime's hashes so both formats carry the same
ids). Rounds alternate old and new and keep the best of each, so a noisy neighbour hurts both alike;
the ratios are what hold on any machine. A node's window model learns every ten minutes and is
checkpointed every few seconds, so its packed form is usually cached: the encode figure counts that,
and "models just learned" is the encode with every cache cleared (the cold case, not base64'd).
"""

from __future__ import annotations

import argparse
import base64
import copy
import pickle
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import orjson

try:
    from bench import results
except ModuleNotFoundError:  # run as a script (python bench/x.py): bench/ itself is on sys.path
    import results  # type: ignore[no-redef]

from policy.engine import NodeRuntime
from policy.model import load_policy
from schemas.gate import GateConfig, id_hash
from sim.replay import OfflineReplay
from sim.simulator.clock import DEFAULT_START, parse_start
from sim.simulator.engine import SimConfig, simulate
from sim.simulator.scenario import load_scenario, resolve


def fleet_runtimes(
    nodes: int, hours: float, seed: int
) -> tuple[dict[str, NodeRuntime], dict[str, list[str]]]:
    """Every node's runtime after replaying a simulated fleet, and each node's remembered event ids."""
    scenarios = [load_scenario(p) for p in resolve(["all"])]
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "fleet.jsonl"
        simulate(SimConfig(nodes, hours, seed, parse_start(DEFAULT_START), scenarios), rec)
        replay = OfflineReplay(load_policy(None))
        for _ in replay.run(rec):
            pass
        recent: dict[str, deque[str]] = {}
        keep = GateConfig().max_ids
        with rec.open("rb") as f:
            for line in f:
                d = orjson.loads(line)
                if d.get("node"):
                    recent.setdefault(d["node"], deque(maxlen=keep)).append(d["id"])
    ids = {n: list(recent.get(n, ())) for n in replay.nodes}
    for n, rt in replay.nodes.items():
        assert list(rt.gate.digests()) == [id_hash(i) for i in ids[n]], f"{n}: recording and gate disagree"
    return replay.nodes, ids


def legacy_runtime(rt: NodeRuntime, ids: list[str]) -> NodeRuntime:
    """The runtime as the code before the compact format held it in memory: ids as strings."""
    old = copy.copy(rt)
    old.gate = copy.copy(rt.gate)
    old.gate.__dict__.update(ids=deque(ids), id_set=set(ids))
    old.det = copy.copy(rt.det)
    old.det.window_model = copy.copy(rt.det.window_model)
    del old.det.window_model.__dict__["packed"]  # the checkpoint form's cache did not exist
    return old


def legacy_record(rt: NodeRuntime) -> bytes:
    """The record as written before the compact format: the whole (legacy) runtime pickled."""
    return pickle.dumps(rt, protocol=pickle.HIGHEST_PROTOCOL)


def legacy_parts(rt: NodeRuntime) -> dict[str, int]:
    """Bytes of each part of a legacy runtime's record, each pickled alone."""
    parts: dict[str, object] = {"gate": rt.gate, "life": rt.life, "placement": rt.placement}
    parts.update({f"det.{k}": v for k, v in vars(rt.det).items()})
    return {k: len(pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)) for k, v in parts.items()}


def _us_each(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e6 / n


def measure(runtimes: list[NodeRuntime], legacy: list[NodeRuntime], rounds: int) -> dict[str, float]:
    """Mean record bytes and best-of-rounds microseconds per record, each way, through base64 as the
    node stage stores it."""
    n = len(runtimes)
    old = [base64.b64encode(legacy_record(rt)) for rt in legacy]
    new = [base64.b64encode(rt.to_bytes()) for rt in runtimes]
    out = {
        "old_bytes": statistics.mean(len(legacy_record(rt)) for rt in legacy),
        "new_bytes": statistics.mean(len(rt.to_bytes()) for rt in runtimes),
        "old_stored": statistics.mean(map(len, old)),
        "new_stored": statistics.mean(map(len, new)),
    }
    best = dict.fromkeys(("enc_old", "enc_new", "enc_cold", "dec_old", "dec_new"), float("inf"))

    def cold() -> None:
        """Encode as right after every model learned: its packed masses are not cached yet."""
        for rt in runtimes:
            rt.det.window_model.packed = None
            rt.to_bytes()

    for _ in range(rounds):
        timed = {
            "enc_cold": cold,
            "enc_old": lambda: [base64.b64encode(legacy_record(rt)) for rt in legacy],
            "enc_new": lambda: [base64.b64encode(rt.to_bytes()) for rt in runtimes],
            "dec_old": lambda: [pickle.loads(base64.b64decode(b)) for b in old],
            "dec_new": lambda: [NodeRuntime.from_bytes(base64.b64decode(b)) for b in new],
        }
        for k, fn in timed.items():
            best[k] = min(best[k], _us_each(fn, n))
    return out | best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--parts", action="store_true", help="Also print the legacy record's bytes per part.")
    args = ap.parse_args()
    nodes, ids = fleet_runtimes(args.nodes, args.hours, args.seed)
    names = sorted(nodes)
    legacy = [legacy_runtime(nodes[n], ids[n]) for n in names]
    m = measure([nodes[n] for n in names], legacy, args.rounds)
    print(
        f"records={len(names)} hours={args.hours} "
        f"bytes old={m['old_bytes']:.0f} new={m['new_bytes']:.0f} "
        f"ratio={m['new_bytes'] / m['old_bytes']:.3f} "
        f"stored(base64) old={m['old_stored']:.0f} new={m['new_stored']:.0f} | "
        f"encode_us old={m['enc_old']:.1f} new={m['enc_new']:.1f} ratio={m['enc_new'] / m['enc_old']:.2f} "
        f"(models just learned: {m['enc_cold']:.1f}) "
        f"decode_us old={m['dec_old']:.1f} new={m['dec_new']:.1f} ratio={m['dec_new'] / m['dec_old']:.2f}"
    )
    results.write("node_record", {"records": len(names), "hours": args.hours, **m})
    if args.parts:
        parts: dict[str, list[int]] = {}
        for rt in legacy:
            for k, v in legacy_parts(rt).items():
                parts.setdefault(k, []).append(v)
        for k, sizes in sorted(parts.items(), key=lambda kv: -statistics.mean(kv[1])):
            print(f"  legacy part {k:28s} mean={statistics.mean(sizes):7.0f} max={max(sizes):6d}")


if __name__ == "__main__":
    main()
