"""One plot per question an SRE asks of the audit store, each built from query rows.

A panel is either a figure or a plain "no data" message that says what would fill it: an empty
store, a window with no quarantines or a run without validations must still give a readable page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

STATE_COLOURS = {
    "Healthy": "#2ca02c",
    "Suspect": "#ffbf00",
    "Quarantined": "#d62728",
    "Repairing": "#9467bd",
    "Validating": "#17becf",
    "Escalated": "#7f7f7f",
}
Records = list[dict[str, Any]]


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    explains: str
    """What the plot answers and how it was computed, shown under the title."""
    figure: go.Figure | None = None
    empty: str = ""
    """Why there is nothing to plot (shown instead of a figure)."""


def _layout(fig: go.Figure, **extra: Any) -> go.Figure:
    fig.update_layout(
        **{"template": "plotly_white", "height": 380, "margin": {"l": 60, "r": 20, "t": 30, "b": 50}, **extra}
    )
    return fig


def nodes_by_state(rows: Records, fleet_nodes: int) -> Panel:
    key, title = "states", "Nodes by state over time"
    explains = (
        f"State of every node with at least one decision at the end of each bucket (fleet: {fleet_nodes} "
        "nodes; the others stayed Healthy throughout)."
    )
    if not rows:
        return Panel(key, title, explains, empty="No decisions in the window, so no state changes to draw.")
    series: dict[str, tuple[list[datetime], list[int]]] = defaultdict(lambda: ([], []))
    for r in rows:
        xs, ys = series[r["state"]]
        xs.append(r["bucket_start"])
        ys.append(int(r["nodes"]))
    fig = go.Figure()
    for state in sorted(series, key=lambda s: list(STATE_COLOURS).index(s) if s in STATE_COLOURS else 99):
        xs, ys = series[state]
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, name=state, mode="lines", stackgroup="states",
                line={"color": STATE_COLOURS.get(state)},
            )
        )  # fmt: skip
    return Panel(key, title, explains, _layout(fig, yaxis_title="nodes"))


def capacity(
    steps: Records,
    pools: Records,
    min_healthy: Callable[[str], float],
    span: tuple[datetime, datetime] | None,
) -> Panel:
    key, title = "capacity", "Capacity removed vs headroom per pool"
    explains = (
        "GPUs out of service (Quarantined, Repairing or Validating; shadow decisions excluded) "
        "after every transition, against the most the policy's headroom table lets a pool lose "
        "(dashed: pool GPUs * (1 - minimum healthy fraction))."
    )
    if span is None or not pools:
        return Panel(key, title, explains, empty="No decisions or no inventory in the window.")
    first, last = span
    by_pool: dict[str, tuple[list[datetime], list[int]]] = {r["pool"]: ([first], [0]) for r in pools}
    for r in steps:
        xs, ys = by_pool.setdefault(r["pool"], ([first], [0]))
        xs.append(r["time"])
        ys.append(int(r["removed_gpus"]))
    totals = {r["pool"]: int(r["pool_gpus"]) for r in pools}
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22"]
    for i, pool in enumerate(sorted(by_pool)):
        colour = palette[i % len(palette)]
        xs, ys = by_pool[pool]
        fig.add_trace(
            go.Scatter(x=[*xs, last], y=[*ys, ys[-1]], name=f"{pool}: removed", mode="lines",
                       line={"shape": "hv", "color": colour})
        )  # fmt: skip
        allowed = totals.get(pool, 0) * (1 - min_healthy(pool))
        fig.add_trace(
            go.Scatter(x=[first, last], y=[allowed, allowed], name=f"{pool}: headroom ({allowed:.0f})",
                       mode="lines", line={"dash": "dash", "color": colour})
        )  # fmt: skip
    return Panel(key, title, explains, _layout(fig, yaxis_title="GPUs"))


def mttr(repairs: Records) -> Panel:
    key, title = "mttr", "Time to repair per failure class"
    explains = (
        "Each dot is one repair: the first Suspect/Quarantined decision to the next Healthy one. "
        "Boxes show median and quartiles."
    )
    if not repairs:
        return Panel(key, title, explains, empty="No node went from a fault back to Healthy in the window.")
    by_class: dict[str, list[float]] = defaultdict(list)
    for r in repairs:
        by_class[r["failure_class"]].append(float(r["seconds"]) / 60)
    fig = go.Figure()
    for cls in sorted(by_class):
        fig.add_trace(go.Box(y=by_class[cls], name=f"{cls} (n={len(by_class[cls])})", boxpoints="all"))
    return Panel(key, title, explains, _layout(fig, yaxis_title="minutes", showlegend=False))


def precision(rows: Records, labelled: bool = False) -> Panel:
    key, title = "precision", "Per-class precision of quarantine decisions"
    if labelled:
        explains = (
            "Of the quarantine decisions, the share a ground-truth fault label confirms (a label that "
            "expects a quarantine active on the node around the decision), by failure class and mode; "
            "the label gives precision."
        )
    else:
        explains = (
            "Of the quarantine decisions a check judged, the share whose fault the check confirmed: a "
            "diagnostic or validation that failed within a week (before the repair, or one the fault "
            "outlived). A quarantine is false when its first check came back clean before any repair "
            "ran; a clean validation after a repair cannot tell a fixed fault from none, so those count "
            "as unconfirmed. Stacked per class and mode; the label gives precision over the judged ones."
        )
    if not rows:
        return Panel(key, title, explains, empty="No quarantines.")
    fig = go.Figure()
    x = [f"{r['failure_class']} ({r['mode']})" for r in rows]
    for col, name in (("confirmed", "confirmed"), ("cleared", "false"), ("unvalidated", "unconfirmed")):
        fig.add_trace(go.Bar(x=x, y=[int(r[col]) for r in rows], name=name))
    judged = [int(r["confirmed"]) + int(r["cleared"]) for r in rows]
    fig.update_traces(selector={"name": "confirmed"}, text=[
        f"precision {int(r['confirmed']) / j:.2f} ({r['confirmed']}/{j})" if j else "not judged"
        for r, j in zip(rows, judged, strict=True)
    ])  # fmt: skip
    return Panel(key, title, explains, _layout(fig, barmode="stack", yaxis_title="quarantines"))


def repeat_offenders(rows: Records) -> Panel:
    key, title = "repeat", "Repeat offenders"
    explains = "Nodes quarantined at least twice in the window (top 25), coloured by their failure classes."
    if not rows:
        return Panel(key, title, explains, empty="No node was quarantined more than once in the window.")
    top = rows[:25][::-1]
    fig = go.Figure(
        go.Bar(
            x=[int(r["quarantines"]) for r in top], y=[r["node"] for r in top], orientation="h",
            text=[", ".join(r["classes"]) for r in top],
        )
    )  # fmt: skip
    return Panel(key, title, explains, _layout(fig, xaxis_title="quarantines"))


def _held(d: dict[str, Any]) -> str:
    return f"guard failed: {d['guard_failed']}" if d["guard_failed"] else ""


LABEL_GAP = 0.08
"""Labelled points of one timeline row stay this share of the time axis apart (a label is ~8 % of a
report-width plot wide); the points between keep their marker and hover text, unlabelled."""


def spread_labels(times: list[Any], texts: list[str], lo: Any, hi: Any) -> tuple[list[str], list[str]]:
    """The labels that fit on one row without overlapping, and their positions (above, then below,
    alternating, so two neighbours may sit half the gap apart): a label is dropped while it would land
    within ``LABEL_GAP`` of the axis of the last one on its side, or repeats its neighbour's text.

    >>> spread_labels([0, 1, 2, 50, 100], ["a", "b", "c", "c", "d"], 0, 100)
    (['a', 'b', '', 'c', 'd'], ['top center', 'bottom center', 'top center', 'top center', 'bottom center'])
    """
    span = hi - lo
    sides = ("top center", "bottom center")
    last: dict[str, Any] = {}
    labels, where = [], []
    prev = ""
    turn = 0
    for t, text in zip(times, texts, strict=True):
        side = sides[turn % 2]
        near = side in last and (not span or (t - last[side]) / span < LABEL_GAP)
        if text == prev or near:
            labels.append("")
            where.append(side)
            continue
        last[side] = t
        prev = text
        labels.append(text)
        where.append(side)
        turn += 1
    return labels, where


def incident(node: str, evidence: Records, decisions: Records, actions: Records) -> Panel:
    key, title = "incident", f"Incident timeline: {node or 'none'}"
    explains = (
        "The quarantined node with the most decisions: its evidence (by failure domain), the decisions "
        "(state transitions with mode and confidence) and the actions taken, on one time axis."
    )
    if not decisions:
        return Panel(key, title, explains, empty="No node was quarantined in the window.")
    fig = go.Figure()
    stamps = [r["time"] for r in (*evidence, *decisions, *actions)]
    lo, hi = min(stamps), max(stamps)
    d_text, d_where = spread_labels(
        [d["time"] for d in decisions], [d["to_state"] for d in decisions], lo, hi
    )
    a_text, a_where = spread_labels(
        [a["time"] for a in actions], [f"{a['action']} {a['status']}".strip() for a in actions], lo, hi
    )
    if evidence:
        fig.add_trace(
            go.Scatter(
                x=[e["time"] for e in evidence], y=[f"evidence: {e['domain']}" for e in evidence],
                mode="markers", name="evidence", marker={"size": [6 + 8 * min(float(e["weight"]), 1.0)
                                                                  for e in evidence]},
                hovertext=[f"{e['signal']} w={float(e['weight']):.2f} ({e['source']})" for e in evidence],
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=[d["time"] for d in decisions], y=["decision"] * len(decisions), mode="markers+text",
            name="decisions", marker={"size": 14, "symbol": "diamond",
                                      "color": [STATE_COLOURS.get(d["to_state"], "#333") for d in decisions]},
            text=d_text, textposition=d_where,
            hovertext=[f"{d['from_state']}→{d['to_state']} {d['failure_class']} {d['action']} "
                       f"[{d['mode']}, c={float(d['confidence']):.2f}] {_held(d)} {d['reasons']}"
                       for d in decisions],
        )
    )  # fmt: skip
    if actions:
        fig.add_trace(
            go.Scatter(
                x=[a["time"] for a in actions], y=["action"] * len(actions), mode="markers+text",
                name="actions", marker={"size": 12, "symbol": "square"},
                text=a_text, textposition=a_where,
                hovertext=[f"{a['kind']} {a['action']} step={a['step']} status={a['status']} "
                           f"validation={a['validation']} by {a['initiator']}" for a in actions],
            )
        )  # fmt: skip
    return Panel(key, title, explains, _layout(fig, height=460, yaxis={"type": "category"}))
