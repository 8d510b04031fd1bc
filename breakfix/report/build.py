"""``build_report``: read the audit store with SQL, draw the panels, write one HTML file.

Callers: ``breakfix report`` and ``breakfix demo`` (which hands it the store the demo's sink wrote).
Nothing here writes to the store, so a report can be built from a production ClickHouse safely.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from breakfix.report import panels
from breakfix.report import sql as q
from breakfix.report.page import render
from policy.model import Policy, load_policy
from store.base import Store
from store.queries import EPOCH, REPAIRS, run_saved

_NICE_BUCKETS_S = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


def bucket_for(span_s: float, target: int = 80) -> int:
    """The smallest round bucket that draws a span in at most ``target`` points.

    >>> bucket_for(6 * 3600)
    300
    >>> bucket_for(0)
    60
    """
    for b in _NICE_BUCKETS_S:
        if span_s / b <= target:
            return b
    return _NICE_BUCKETS_S[-1]


def _rows(store: Store, sql: str, **params: Any) -> list[dict[str, Any]]:
    return store.query(sql.replace("$db", store.database), params).dicts()


def _incident(store: Store, since: datetime) -> panels.Panel:
    pick = _rows(store, q.BUSIEST_INCIDENT, since=since)
    if not pick:
        return panels.incident("", [], [], [])
    node, first, last = pick[0]["node"], pick[0]["first"], pick[0]["last"]
    window = {"node": node, "start": first - (last - first) * 0.05, "end": last + (last - first) * 0.05}
    evidence = _rows(store, q.INCIDENT_EVIDENCE, **window)
    decisions = _rows(store, q.INCIDENT_DECISIONS, **window)
    actions = _rows(store, q.INCIDENT_ACTIONS, **window)
    return panels.incident(node, evidence, decisions, actions)


def _precision(store: Store, since: datetime) -> tuple[panels.Panel, list[dict[str, Any]]]:
    """Judged by ground truth where the store holds it (the demo's labels, by the demo summary's
    rule), else by the checks (the fleet exporter's rule); the rows also give the summary tiles."""
    labelled = bool(store.query(q.LABELLED.replace("$db", store.database)).rows[0][0])
    if labelled:
        rows = _rows(store, q.PRECISION_LABELLED, since=since, match_s=q.LABEL_MATCH_S)
    else:
        rows = _rows(store, q.PRECISION, since=since)
    return panels.precision(rows, labelled), rows


def build_report(
    store: Store, out_path: str | Path, since: datetime | None = None, *, policy: Policy | None = None
) -> Path:
    """Write the report for decisions at or after ``since`` (default: everything) to ``out_path``.

    ``policy`` supplies the headroom table the capacity panel draws against (default: the shipped
    policy file). Returns the path written. An empty store gives a page of "no data" panels.
    """
    pol = policy or load_policy()
    start = since or EPOCH
    span = _rows(store, q.SPAN, since=start)[0]
    fleet = _rows(store, q.FLEET)[0]
    decided = int(span["decisions"])
    span_s = (span["last"] - span["first"]).total_seconds() if decided else 0.0
    states = run_saved(store, "nodes_by_state", since=start, bucket_s=bucket_for(span_s)).dicts()
    repairs = _rows(store, REPAIRS, since=start)
    offenders = run_saved(store, "repeat_offenders", since=start, min_quarantines=2).dicts()
    precision, judged = _precision(store, start)
    built = [
        panels.nodes_by_state(states if decided else [], int(fleet["nodes"])),
        panels.capacity(
            _rows(store, q.CAPACITY_STEPS, since=start),
            _rows(store, q.POOLS),
            pol.min_healthy_fraction,
            (span["first"], span["last"]) if decided else None,
        ),
        panels.mttr(repairs),
        precision,
        panels.repeat_offenders(offenders),
        _incident(store, start),
    ]
    covered = (
        f"{span['first']:%Y-%m-%d %H:%M} → {span['last']:%Y-%m-%d %H:%M} UTC" if decided else "no decisions"
    )
    meta = (
        f"store {store.kind}:{store.database} · policy {pol.version} · decisions {covered} · "
        f"generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    mean_repair = sum(float(r["seconds"]) for r in repairs) / len(repairs) / 60 if repairs else None
    summary = [
        ("nodes in fleet", f"{int(fleet['nodes']):,}"),
        ("GPUs", f"{int(fleet['gpus'] or 0):,}"),
        ("decisions", f"{decided:,}"),
        ("nodes with decisions", f"{int(span['nodes']):,}"),
        ("repairs completed", f"{len(repairs):,}"),
        ("mean time to repair", f"{mean_repair:.0f} min" if mean_repair is not None else "-"),
        ("repeat offenders", f"{len(offenders):,}"),
        ("quarantines", f"{sum(int(r['quarantines']) for r in judged):,}"),
        ("false quarantines", f"{sum(int(r['cleared']) for r in judged):,}"),
    ]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render("GPU break-fix report", meta, summary, built), encoding="utf-8")
    return out
