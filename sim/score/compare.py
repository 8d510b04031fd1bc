"""Ours next to the naive baseline: the headline figures, flattened, with a ratio (ours / naive)."""

from __future__ import annotations

from typing import Any, Literal

Better = Literal["higher", "lower", "-"]

# (key in the flattened figures, human label, which direction is better)
HEADLINE: tuple[tuple[str, str, Better], ...] = (
    ("quarantines", "quarantines", "-"),
    ("true_quarantines", "true quarantines", "higher"),
    ("false_quarantines", "false quarantines", "lower"),
    ("noise_quarantines", "quarantines on noise", "lower"),
    ("silent_quarantines", "quarantines of silent nodes", "lower"),
    ("precision", "quarantine precision", "higher"),
    ("recall", "quarantine recall", "higher"),
    ("recall_decisive_hw", "recall, decisive hardware", "higher"),
    ("missed_held", "missed: quarantine held by a guardrail", "-"),
    ("wrongful_destructive", "wrongful destructive actions", "lower"),
    ("ttd_s.median", "time to detect, median (s)", "lower"),
    ("ttd_s.p95", "time to detect, p95 (s)", "lower"),
    ("mttr_s.median", "MTTR, median (s)", "lower"),
    ("mttr_s.unresolved", "faults never returned to Healthy", "-"),
    ("time_to_first_action_s.median", "fault to first action, median (s)", "lower"),
    ("time_to_first_action_s.p95", "fault to first action, p95 (s)", "lower"),
    ("node_days_out_of_healthy", "node-days out of Healthy", "lower"),
    ("nodes_left_healthy", "nodes that left Healthy", "lower"),
    ("incidents_opened", "incidents opened", "-"),
    ("decisive_frozen", "decisive faults frozen by an incident (must be 0)", "lower"),
    ("storm_incidents", "incidents in storms", "-"),
    ("storm_quarantines", "quarantines in storms", "lower"),
    ("storm_drains", "drains in storms", "lower"),
    ("max_capacity_removed_frac", "max share of a pool removed", "lower"),
    ("pools_below_headroom", "pools below headroom", "lower"),
)


def flatten(fig: dict[str, Any]) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    for key, _, _ in HEADLINE:
        if key == "max_capacity_removed_frac":
            cap = fig.get("capacity") or {}
            out[key] = max((p["max_removed_frac"] for p in cap.values()), default=None) if cap else None
            continue
        value: Any = fig
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value if isinstance(value, int | float) else None
    return out


def ratio(ours: float | int | None, naive: float | int | None) -> float | None:
    """ours / naive; None when either is missing or naive is zero (no meaningful ratio)."""
    if ours is None or naive is None or naive == 0:
        return None
    return round(ours / naive, 4)


def compare(ours: dict[str, Any], naive: dict[str, Any]) -> dict[str, dict[str, float | int | None]]:
    a, b = flatten(ours), flatten(naive)
    return {k: {"ours": a[k], "naive": b[k], "ratio": ratio(a[k], b[k])} for k, _, _ in HEADLINE}
