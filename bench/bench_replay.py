"""Offline replay rate as a ratio of the rate at which the same file is merely read and validated.

Usage: python -m bench.bench_replay REC.jsonl[.gz] [--policy FILE]
Both figures come from the same run on the same file, so the ratio holds on any machine.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from breakfix.replay import OfflineReplay
from policy.model import load_policy
from schemas.recording import Validator, read_recording


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recording")
    ap.add_argument("--policy")
    args = ap.parse_args()
    t = time.perf_counter()
    n = sum(1 for _ in read_recording(args.recording, Validator()))
    base = n / (time.perf_counter() - t)
    replay = OfflineReplay(load_policy(args.policy))
    tracemalloc.start()
    t = time.perf_counter()
    decisions = sum(1 for o in replay.run(args.recording) if o.decision is not None)
    rate = replay.summary.events / (time.perf_counter() - t)
    _, peak = tracemalloc.get_traced_memory()
    nodes = max(1, len(replay.nodes))
    print(f"lines={n} validate_rate={base:,.0f}/s replay_rate={rate:,.0f}/s ratio={rate / base:.2f} "
          f"decisions={decisions} nodes={nodes} peak_mem_per_node={peak / nodes / 1024:.1f}KiB")


if __name__ == "__main__":
    main()
