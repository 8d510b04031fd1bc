"""Size and encode/decode cost of the guard's state record, and of the guard stage's snapshot built on
it: the current format against the plain pickle it replaced, on the same state, in one run.

Usage: python -m bench.bench_guard_record [--nodes 10000] [--waiting 400] [--rounds 7]

A guard stage is fed ``--nodes`` registrations (16 nodes a rack, 3 pools, as
tests/unit/test_guard_snapshot_size.py does) and ``--waiting`` quarantine proposals, each of its own
failure class so no blast-radius incident absorbs them: two per pool are granted, the rest wait for a
pool slot. Its outbox is then cleared, as after the decisions were sent. Timed: the record each way
(``guard_to_bytes``/``guard_from_bytes`` against ``plain_pickle``/``pickle.loads``), and
``GuardStage.snapshot()`` (record + base64 + JSON + zlib, what the guard writes up to twice per
decision) with each. A node's row is reused while its placement and state are unchanged, as between
two snapshots of a running guard; "encode ms, cold" forgets every row first (a restarted guard's first
snapshot). Rounds alternate old and new and keep the best of each, so a noisy neighbour hurts
both alike; the ratios are what hold on any machine.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel

try:
    from bench import results
except ModuleNotFoundError:  # run as a script (python bench/x.py): bench/ itself is on sys.path
    import results  # type: ignore[no-redef]

from policy import guard_record
from policy.engine import Engine, guard_from_bytes, guard_to_bytes
from policy.guard import GuardState
from policy.model import load_policy
from schemas.common import NodeState
from schemas.decision import ActionKind
from schemas.proposal import Placement, Proposal, Registration
from streams.pipeline.guard_stage import GuardStage

PARTITIONS = 12
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def plain_pickle(g: GuardState) -> bytes:
    """The record as written before the compact format: the whole ``GuardState`` pickled."""
    return pickle.dumps(g, protocol=pickle.HIGHEST_PROTOCOL)


def _stage(engine: Engine, to_bytes: Callable[[GuardState], bytes]) -> GuardStage:
    kinds: dict[str, type[BaseModel]] = {"proposal": Proposal, "registration": Registration}
    return GuardStage(engine, to_bytes, guard_from_bytes, kinds, PARTITIONS, 1e12)


def _proposal(node: str, i: int, placement: Placement) -> Proposal:
    return Proposal(
        id=f"{node}:sim-{i:x}:confidence_over_threshold",
        time=T0,
        node=node,
        from_state=NodeState.SUSPECT,
        to_state=NodeState.QUARANTINED,
        trigger="confidence_over_threshold",
        failure_class=f"class-{i:04d}",
        confidence=0.8,
        action=ActionKind.REBOOT,
        reasons=[f"xid.79: NVRM: Xid (PCI:0000:{i % 256:02x}:00): 79, GPU has fallen off the bus (w=0.9)"]
        * 3,
        evidence=[f"ev-{node}-{k}-{i}" for k in range(6)],
        evidence_time=T0,
        placement=placement,
    )


def loaded_stage(engine: Engine, nodes: int, waiting: int) -> GuardStage:
    """A guard stage after the registrations and proposals went through it; the waiting queue beyond
    the first proposals is filled as the guard fills it (held proposal, node Suspect, wait started):
    the guard re-checks every waiting proposal against the whole fleet on each step, so building a
    400-deep queue through it takes minutes."""
    stage = _stage(engine, guard_to_bytes)
    t = T0.timestamp()
    placements = {}
    for i in range(nodes):
        node = f"gpu-{i:05d}"
        placements[node] = Placement(pool=f"pool-{i % 3}", rack=f"rack-{i // 16:04d}", sku="H100", gpus=8)
        reg = Registration(node=node, time=T0, placement=placements[node])
        stage.on_item(
            "registration", (t, node, 0), f"reg-{node}", reg.model_dump_json().encode(), i % 12, 0.0
        )
    step = max(1, nodes // max(1, waiting))
    proposals = [
        _proposal(f"gpu-{i * step:05d}", i, placements[f"gpu-{i * step:05d}"]) for i in range(waiting)
    ]
    through = 12  # the first few take the slots (per pool, per SKU), the rest of these wait
    for i, p in enumerate(proposals[:through]):
        stage.on_item("proposal", (t + 1, p.node, 1), p.id, p.model_dump_json().encode(), i % 12, 0.0)
    for partition in range(PARTITIONS):
        stage.on_progress(partition, (t + 60, "", 0))
    stage.release(0.0)
    g = stage.g
    assert g.waiting or waiting <= through, "the slots are taken: later proposals wait"
    for p in proposals[through:]:
        p = Proposal.model_validate_json(p.model_dump_json())  # as read from the proposals topic
        g.seen[p.id] = None
        g.nodes[p.node].state = p.from_state
        g.waiting.append(p)
        g.wait_started[p.node] = (t + 1, t + 1)
    stage.outbox.clear()  # sent: a steady-state snapshot carries few unsent decisions
    return stage


def _ms(fn: Callable[[], object]) -> float:
    gc.collect()  # else a collection of the other format's garbage may land in this one's time
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--waiting", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    engine = Engine(load_policy(None))
    new_stage = loaded_stage(engine, a.nodes, a.waiting)
    g = new_stage.g
    old_stage = _stage(engine, plain_pickle)
    old_stage.__dict__.update({k: v for k, v in vars(new_stage).items() if k != "guard_to_bytes"})
    old_rec, new_rec = plain_pickle(g), guard_to_bytes(g)
    old_snap, new_snap = old_stage.snapshot(), new_stage.snapshot()

    def cold() -> None:
        """Encode as a restarted guard's first snapshot does: no node's row is known yet."""
        guard_record._rows.clear()
        guard_to_bytes(g)

    timed: dict[str, Callable[[], object]] = {
        "enc_old": lambda: plain_pickle(g),
        "enc_cold": cold,
        "enc_new": lambda: guard_to_bytes(g),
        "dec_old": lambda: pickle.loads(old_rec),
        "dec_new": lambda: guard_from_bytes(new_rec),
        "snap_old": old_stage.snapshot,
        "snap_new": new_stage.snapshot,
    }
    best = dict.fromkeys(timed, float("inf"))
    for _ in range(a.rounds):
        for k, fn in timed.items():
            best[k] = min(best[k], _ms(fn))
    queued = f"{len(g.waiting)} proposals waiting, {len(g.backlog)} in the backlog"
    print(f"guard of {len(g.nodes):,} registered nodes, {queued}; best of {a.rounds} rounds")
    print(f"{'':18}{'old':>12}{'new':>12}{'new/old':>9}")
    rows = [
        ("record bytes", len(old_rec), len(new_rec), "{:,.0f}"),
        ("snapshot bytes", len(old_snap), len(new_snap), "{:,.0f}"),
        ("encode ms", best["enc_old"], best["enc_new"], "{:.2f}"),
        ("encode ms, cold", best["enc_old"], best["enc_cold"], "{:.2f}"),
        ("decode ms", best["dec_old"], best["dec_new"], "{:.2f}"),
        ("snapshot() ms", best["snap_old"], best["snap_new"], "{:.2f}"),
    ]
    for name, old, new, fmt in rows:
        print(f"{name:18}{fmt.format(old):>12}{fmt.format(new):>12}{new / old:>9.3f}")
    table = {name: {"old": old, "new": new, "new_vs_old": round(new / old, 3)} for name, old, new, _ in rows}
    results.write("guard_record", {"nodes": len(g.nodes), "rounds": a.rounds, **table})


if __name__ == "__main__":
    main()
