"""Bad input never crashes a stage and never causes an action: property tests, a fuzzer, malformed
recordings, a one-node flood and an unknown-node storm, with the figures docs/evidence/reliability.md quotes.

Seeds are one valid message per event type (the shipped sample); hypothesis mutates them structurally
(drop, retype, replace a field anywhere, change the tag) and byte-wise (truncate, splice, flip).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.figures import record
from reliability.safety import assert_safe

from policy.engine import Engine, NodeRuntime
from policy.model import load_policy
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.decision import Decision
from schemas.events import EVENT_TYPES, Envelope, event_type_of
from schemas.parse import MAX_MESSAGE_BYTES, parse_event
from sim.replay import OfflineReplay
from tests.conftest import SAMPLE

HERE = Path(__file__).parent
LINES = [x for x in SAMPLE.read_bytes().splitlines() if x.strip()]
SEEDS: dict[str, bytes] = {}
for _line in LINES:
    SEEDS.setdefault(orjson.loads(_line)["type"], _line)
TRIED: Counter[str] = Counter()
LETTERS: Counter[str] = Counter()
ENGINE = Engine(load_policy(None))


def _inventory_runtime(node: str) -> NodeRuntime:
    """A runtime that has seen ``node``'s inventory, so mutated events reach the detectors."""
    inv = parse_event(SEEDS["node.inventory"])
    assert isinstance(inv, Envelope)
    inv = inv.model_copy(update={"node": node})
    step = ENGINE.node_step(None, inv, inv.time.timestamp())
    assert step.runtime is not None
    return step.runtime


def judge(raw: bytes) -> str:
    """Push one input through parse, gate and node step; return the outcome. Any exception is a crash."""
    TRIED["inputs"] += 1
    parsed = parse_event(raw, "prop")
    if isinstance(parsed, DeadLetter):
        assert parsed.reason in DeadLetterReason and parsed.message
        LETTERS[parsed.reason.value] += 1
        return parsed.reason.value
    again = parse_event(parsed.model_dump_json())
    assert isinstance(again, Envelope) and again.id == parsed.id, "a valid event must round-trip"
    assert event_type_of(again) == event_type_of(parsed)
    t = parsed.time.timestamp()
    if parsed.node is None:  # fleet-wide events (scheduler, changes) go to every node
        rt = _inventory_runtime("n1")
        ENGINE.fleet_step({rt.node: rt}, parsed, t)
        return "accepted"
    step = ENGINE.node_step(_inventory_runtime(parsed.node), parsed, t)
    if step.rejection is not None:
        LETTERS[step.rejection[0].value] += 1
        return step.rejection[0].value
    return "accepted"


# --- structural mutations of valid seeds ----------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    obj = orjson.loads(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(obj)
        path = draw(st.sampled_from(paths))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["drop", "replace", "retag", "extra"]))
        if op == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif op == "retag":
            obj["type"] = draw(st.sampled_from([*EVENT_TYPES, "", "gpu.Xid", "x" * 300]))
        elif op == "extra" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(JSON)
        else:
            parent[path[-1]] = draw(JSON)
    return json.dumps(obj).encode()


@st.composite
def byte_mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["cut", "splice", "flip"]))
        if op == "cut":
            del raw[i:]
        elif op == "splice":
            raw[i:i] = draw(st.binary(max_size=16))
        elif raw and i < len(raw):
            raw[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(raw)


def test_every_event_type_has_a_seed() -> None:
    assert set(SEEDS) == set(EVENT_TYPES), "a new event type needs a sample line to be fuzzed"
    assert all(judge(raw) == "accepted" or raw == SEEDS["node.inventory"] for raw in SEEDS.values())


FAST = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(mutated())
def test_structural_mutations_never_crash_and_bad_ones_say_why(raw: bytes) -> None:
    TRIED["structural"] += 1
    judge(raw)


@FAST
@given(byte_mutated())
def test_byte_mutations_never_crash(raw: bytes) -> None:
    TRIED["bytes"] += 1
    judge(raw)


@FAST
@given(st.binary(max_size=512))
def test_random_bytes_are_dead_letters(raw: bytes) -> None:
    TRIED["random_bytes"] += 1
    assert judge(raw) != "accepted"


# --- coverage-guided fuzzing (atheris) ------------------------------------------------------


def test_atheris_fuzzer_finds_no_crash(tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed; the hypothesis byte fuzzers above still run")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, raw in SEEDS.items():
        (corpus / name).write_bytes(raw)
    cmd = [
        sys.executable,
        str(HERE / "fuzz_parse.py"),
        "-max_total_time=10",
        "-rss_limit_mb=2048",
        str(corpus),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=HERE.parents[1])
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    done = [x for x in log.splitlines() if x.startswith("Done ")]
    assert done, log[-2000:]
    runs = int(done[-1].split()[1])
    assert runs > 1000, done[-1]
    record("bad_input.atheris", runs=runs, seconds=10, crashes=0, corpus_after=len(list(corpus.iterdir())))


# --- whole pipeline: bad input causes no decision -------------------------------------------


def _replay(lines: list[bytes], tmp: Path, name: str, gz: bool = False) -> tuple[list[Decision], Any]:
    path = tmp / (name + (".jsonl.gz" if gz else ".jsonl"))
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if gz else data)
    replay = OfflineReplay(load_policy(None))
    decisions = [o.decision for o in replay.run(path) if o.decision is not None]
    return decisions, replay


def _bad_inputs(n: int, seed: int) -> list[bytes]:
    """``n`` inputs that each fail on their own: mutated seeds kept only when they dead-letter."""
    rng = random.Random(seed)
    out: list[bytes] = []
    while len(out) < n:
        obj = orjson.loads(rng.choice(LINES))
        key = rng.choice(["id", "type", "time", "node", "data", "source"])
        obj[key] = rng.choice([None, 1e300, -1, "", "\x00", [], {"x": 1}, "2099-13-40T99:00:00Z"])
        raw = orjson.dumps(obj)
        if rng.random() < 0.3:
            raw = raw[: rng.randrange(1, len(raw))]
        if isinstance(parse_event(raw), DeadLetter):
            out.append(raw.replace(b"\n", b" "))
    return out


def test_bad_input_interleaved_with_a_real_stream_changes_no_decision(tmp_path: Path) -> None:
    baseline, _ = _replay(LINES, tmp_path, "clean")
    assert baseline, "the sample must decide something, or the comparison proves nothing"
    bad = _bad_inputs(3000, seed=11)
    mixed: list[bytes] = []
    for i, line in enumerate(LINES):
        mixed.append(line)
        mixed.extend(bad[i * len(bad) // len(LINES) : (i + 1) * len(bad) // len(LINES)])
    decisions, replay = _replay(mixed, tmp_path, "mixed")
    assert decisions == baseline
    assert_safe(decisions, SAMPLE)
    letters = dict(replay.summary.dead_letters)
    assert sum(letters.values()) == len(bad)
    record(
        "bad_input.pipeline",
        inputs_tried=TRIED["inputs"] + len(bad),
        hypothesis_examples={k: v for k, v in TRIED.items() if k != "inputs"},
        dead_letters_by_reason=dict(LETTERS + Counter(letters)),
        crashes=0,
        decisions_caused_by_bad_input=len(decisions) - len(baseline),
        actions_caused=sum(d.executable for d in decisions) - sum(d.executable for d in baseline),
    )


def test_malformed_recordings_end_cleanly(tmp_path: Path) -> None:
    baseline, _ = _replay(LINES, tmp_path, "clean")
    whole = gzip.compress(b"\n".join(LINES) + b"\n")
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    t = OfflineReplay(load_policy(None))
    truncated = [o.decision for o in t.run(cut) if o.decision]
    assert 0 < t.summary.events < len(LINES), "the readable part is read, then the file ends"
    assert truncated == baseline[: len(truncated)], "a truncated gzip ends the file, nothing else"
    rng = random.Random(5)
    garbage = [bytes(rng.randrange(256) for _ in range(200)).replace(b"\n", b"") for _ in range(500)]
    g_dec, g = _replay(garbage, tmp_path, "garbage")
    huge = b'{"id":"h","type":"node.kernel","source":"s","time":"2026-11-23T10:00:00Z","node":"n","data":'
    huge += b'{"line":"' + b"x" * (MAX_MESSAGE_BYTES * 4) + b'"}}'
    h_dec, h = _replay([*LINES[:5], huge, *LINES[5:]], tmp_path, "huge")
    assert g_dec == [] and g.summary.events == 0
    assert h.summary.dead_letters == Counter({"absurd_value": 1}) and h_dec == baseline
    record(
        "bad_input.recordings",
        truncated_gzip=f"{t.summary.events} of {len(LINES)} lines, {len(truncated)} decisions (a prefix)",
        garbage_lines=len(garbage),
        garbage_dead_letters=dict(g.summary.dead_letters),
        huge_line_bytes=len(huge),
        crashes=0,
        actions_caused=0,
    )


def _sample(i: int, node: str, t: str) -> bytes:
    gpus = [{"index": g, "temp_c": 50, "power_w": 300, "util": 0.9} for g in range(8)]
    return orjson.dumps(
        {
            "id": f"f{i}",
            "type": "gpu.sample",
            "source": "flood",
            "time": t,
            "node": node,
            "data": {"gpus": gpus},
        }
    )


def test_a_flood_of_one_nodes_events_and_an_unknown_node_storm(tmp_path: Path) -> None:
    baseline, _ = _replay(LINES, tmp_path, "clean")
    first = orjson.loads(LINES[0])
    node, t = first["node"], first["time"]
    flood = [_sample(i, node, t) for i in range(20_000)]
    flood += flood[-400:]  # re-delivered close together: duplicates
    storm = [_sample(100_000 + i, f"ghost-{i}", t) for i in range(20_000)]
    start = time.perf_counter()
    decisions, replay = _replay([LINES[0], *flood, *storm, *LINES[1:]], tmp_path, "flood")
    seconds = time.perf_counter() - start
    others = [d for d in decisions if d.node != node]
    assert others == [d for d in baseline if d.node != node], "one node's flood changed other nodes"
    assert replay.summary.dead_letters["unknown_node"] == len(storm)
    assert replay.summary.dead_letters["duplicate"] == 400
    assert not any(n.startswith("ghost-") for n in replay.nodes), "unknown nodes must hold no state"
    assert len(replay.nodes[node].gate) <= ENGINE.gate_cfg.max_ids, "per-node memory is bounded"
    assert sum(d.executable for d in decisions) == sum(d.executable for d in baseline)
    assert_safe(decisions, SAMPLE)
    record(
        "bad_input.flood_and_storm",
        flood_events=len(flood),
        storm_events=len(storm),
        dead_letters=dict(replay.summary.dead_letters),
        events_per_s=round((len(flood) + len(storm)) / seconds),
        crashes=0,
        actions_caused=0,
    )
