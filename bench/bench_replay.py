"""Offline replay rate as a ratio of the rate at which the same file is merely read and validated.

Usage: python -m bench.bench_replay REC.jsonl[.gz] [--policy FILE] [--rounds N] [--memory]
Both rates come from the same run on the same file (alternating rounds, best of each, so a noisy
neighbour on a shared machine hurts both alike); the ratio is what holds on any machine. Peak memory
per node (tracemalloc, which slows Python several-fold) is measured in a separate pass when asked.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

try:
    from bench import results
except ModuleNotFoundError:  # run as a script (python bench/x.py): bench/ itself is on sys.path
    import results  # type: ignore[no-redef]

from policy.model import Policy, load_policy
from schemas.recording import Validator, read_recording
from sim.replay import OfflineReplay


def validate_rate(path: str) -> tuple[int, float]:
    t = time.perf_counter()
    n = sum(1 for _ in read_recording(path, Validator()))
    return n, n / (time.perf_counter() - t)


def replay_rate(path: str, policy: Policy) -> tuple[OfflineReplay, int, float]:
    replay = OfflineReplay(policy)
    t = time.perf_counter()
    decisions = sum(1 for o in replay.run(path) if o.decision is not None)
    return replay, decisions, replay.summary.events / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recording")
    ap.add_argument("--policy")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--memory", action="store_true", help="Also measure peak memory per node (slow).")
    args = ap.parse_args()
    policy = load_policy(args.policy)
    base = rate = 0.0
    n = decisions = nodes = 0
    for _ in range(max(1, args.rounds)):
        n, b = validate_rate(args.recording)
        replay, decisions, r = replay_rate(args.recording, policy)
        base, rate, nodes = max(base, b), max(rate, r), max(1, len(replay.nodes))
    figures: dict[str, float] = {"lines": n, "validate_per_s": round(base), "replay_per_s": round(rate),
               "ratio": round(rate / base, 2), "decisions": decisions, "nodes": nodes}  # fmt: skip
    line = (
        f"lines={n} validate_rate={base:,.0f}/s replay_rate={rate:,.0f}/s ratio={rate / base:.2f} "
        f"decisions={decisions} nodes={nodes} per_event_us={1e6 / rate:.1f} "
        f"validate_us={1e6 / base:.1f}"
    )
    if args.memory:
        tracemalloc.start()
        replay_rate(args.recording, policy)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        line += f" peak_mem_per_node={peak / nodes / 1024:.1f}KiB"
        figures["peak_mem_per_node_kib"] = round(peak / nodes / 1024, 1)
    print(line)
    results.write("replay", figures)


if __name__ == "__main__":
    main()
