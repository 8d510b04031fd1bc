"""Collectors over real inputs from public sources: each case names its source and how the published
reference reads it. ``../shared/realworld`` (outside the repository, read in place) holds a first set;
``collect_data/public`` holds the cases added here. A family passes when >= 95% of its cases are read
as the reference reads them and no case makes a collector raise; the rest are listed with reasons."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.collect.dcgm import DcgmCollector
from agents.collect.slurm import SlurmCollector
from detectors.catalog import default_catalog
from detectors.signals import detect_condition
from detectors.state import DetectState
from schemas.deadletter import DeadLetter
from schemas.events import GpuSample, GpuXid, NodeCondition, NodeInventory
from streams.kafka.producer import check
from tests.builders import ev

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "realworld"
PUBLIC = Path(__file__).parent / "collect_data" / "public"
AGREEMENT = 0.95


def cases(family: str) -> Iterator[dict[str, Any]]:
    """Cases of one family from the shared set (when present) and from this repository."""
    for path, base in ((SHARED / f"{family}.jsonl", SHARED), (PUBLIC / f"{family}.jsonl", PUBLIC)):
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                case = json.loads(line)
                if "raw_file" in case:
                    case["raw"] = (base / case["raw_file"]).read_text()
                yield case


def _dcgm_read(case: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, int]], dict[str, int]]:
    """What the dcgm collector made of a case: node → GPU → fields, new Xids, unused counts."""
    texts = [case["raw"], *([case["next"]] if "next" in case else [])]
    collector = DcgmCollector("http://exporter/metrics", fetch=lambda _u, _t: texts.pop(0))
    rounds = []
    while texts:
        rounds.append([check(e) for e in collector.poll(0)])
    refused = [e for r in rounds for e in r if isinstance(e, DeadLetter)]
    assert not refused, f"{case['id']}: the collector made an invalid event: {refused}"
    events = rounds[-1]  # the last scrape's samples and Xids; inventory comes with the first
    inventory = {e.node: e for e in rounds[0] if isinstance(e, NodeInventory)}
    nodes: dict[str, Any] = {}
    for sample in (e for e in events if isinstance(e, GpuSample)):
        inv = inventory[sample.node]
        extra = inv.data.model_extra or {}
        gpus = nodes.setdefault(sample.node, {})
        for pos, g in enumerate(sample.data.gpus):
            read = g.model_dump()
            read["uuid"] = extra["gpu_uuids"][pos]
            read["driver"] = extra.get("driver_version")
            read["model"] = inv.data.sku
            read["mig"] = [[m["gpu_instance_id"], m["profile"]] for m in read.get("mig", [])]
            gpus[str(g.index)] = read
    xids = [(e.data.gpu, e.data.xid) for e in events if isinstance(e, GpuXid)]
    case["missing_read"] = sorted(collector.missing)
    return nodes, xids, dict(collector.unused)


def _dcgm_disagreement(case: dict[str, Any]) -> str | None:
    exp = case["expected"]
    nodes, xids, unused = _dcgm_read(case)
    default = socket.gethostname().split(".")[0]
    want_nodes = {default if n == "<default>" else n: gpus for n, gpus in exp["nodes"].items()}
    if set(nodes) != set(want_nodes):
        return f"nodes {sorted(nodes)} != {sorted(want_nodes)}"
    for node, gpus in want_nodes.items():
        if set(nodes[node]) != set(gpus):
            return f"{node}: GPUs {sorted(nodes[node])} != {sorted(gpus)}"
        for index, fields in gpus.items():
            got = {k: nodes[node][index].get(k) for k in fields}
            if got != fields:
                return f"{node} GPU {index}: {got} != {fields}"
    if "unused" in exp and unused != exp["unused"]:
        return f"unused {unused} != {exp['unused']}"
    if "missing" in exp and case["missing_read"] != exp["missing"]:
        return f"missing fields {case['missing_read']} != {exp['missing']}"
    if [tuple(x) for x in exp.get("xids", [])] != xids:
        return f"xids {xids} != {exp.get('xids', [])}"
    return None


def _slurm_runner(case: dict[str, Any]) -> Any:
    """Answers like a controller that gives the case's JSON, or (text cases) no JSON at all."""
    raw = case["raw"]

    def run(argv: Sequence[str], _timeout: float) -> str:
        if case["format"] == "text":
            if "--json" in argv:
                raise RuntimeError(f"{argv[0]}: error: unrecognized option '--json'")
            return raw if argv[0] == "scontrol" else ""
        doc = json.loads(raw) if isinstance(raw, str) else raw
        doc = doc[case["raw_key"]] if "raw_key" in case else doc
        return json.dumps(doc if argv[0] == "sinfo" else {"jobs": []})

    return run


def _slurm_disagreement(case: dict[str, Any]) -> str | None:
    collector = SlurmCollector(_slurm_runner(case))
    events = [check(e) for e in collector.poll(0)]
    refused = [e for e in events if isinstance(e, DeadLetter)]
    assert not refused, f"{case['id']}: the collector made an invalid event: {refused}"
    conds = {e.node: e.data for e in events if isinstance(e, NodeCondition)}
    inventory = {e.node: e.data for e in events if isinstance(e, NodeInventory)}
    want = case["expected"]["nodes"]
    if set(conds) != set(want):
        return f"nodes {sorted(conds)} != {sorted(want)}"
    for node, fields in want.items():
        c, extra = conds[node], conds[node].model_extra or {}
        read = {
            "status": c.status,
            "reason": c.reason,
            "reason_set_by": extra.get("reason_set_by"),
            "slurm_reason": extra.get("slurm_reason"),
            "reason_time": extra.get("reason_time"),
            "gpus": inventory[node].gpus,
            "pool": inventory[node].pool,
        }
        expect = {k: v for k, v in fields.items() if k != "reason_time_local"}
        if "reason_time_local" in fields:  # scontrol text: the controller's local time, no zone
            expect["reason_time"] = datetime.fromisoformat(fields["reason_time_local"]).astimezone()
        if isinstance(expect.get("reason_time"), int):
            expect["reason_time"] = datetime.fromtimestamp(expect["reason_time"], UTC)
        if isinstance(expect.get("reason_time"), datetime):
            expect["reason_time"] = expect["reason_time"].astimezone(UTC).isoformat()
        got = {k: read[k] for k in expect}
        if got != expect:
            return f"{node}: {got} != {expect}"
    return None


def _npd_disagreement(case: dict[str, Any]) -> str | None:
    """A problem condition NPD sets True must become evidence in a failure domain; False must not."""
    raw = case["raw"]
    event = ev("node.condition", "n1", 60, raw)
    found = detect_condition(DetectState("n1"), event, default_catalog(), event.time.timestamp())  # type: ignore[arg-type]
    want = case["expected"]["problem"] and raw["status"] == "True"
    if want and not found:
        return f"{raw['condition']}={raw['status']} is no evidence"
    if not want and found:
        return f"{raw['condition']}={raw['status']} became evidence {found}"
    cleared = ev("node.condition", "n1", 61, dict(raw, status="False"))
    if detect_condition(DetectState("n1"), cleared, default_catalog(), 61.0):  # type: ignore[arg-type]
        return f"{raw['condition']}=False (no problem) became evidence"
    return None


def _agreement(family: str, judge: Any) -> tuple[int, dict[str, str]]:
    total, wrong = 0, {}
    for case in cases(family):
        total += 1
        why = judge(case)
        if why:
            wrong[f"{case['id']} ({case['source']})"] = why
    return total, wrong


@pytest.mark.parametrize(
    ("family", "judge", "at_least"),
    [
        ("dcgm", _dcgm_disagreement, 10),
        ("slurm", _slurm_disagreement, 9),
        ("npd", _npd_disagreement, 13),
    ],
)
def test_real_inputs_are_read_as_their_reference_reads_them(family: str, judge: Any, at_least: int) -> None:
    total, wrong = _agreement(family, judge)
    assert total >= at_least, f"{family}: too few cases to judge ({total})"
    agreed = (total - wrong.__len__()) / total
    assert agreed >= AGREEMENT, f"{family}: {agreed:.0%} of {total} agree; disagreements: {wrong}"
