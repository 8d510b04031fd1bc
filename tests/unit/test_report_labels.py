"""The incident timeline's labels never overlap: on each row, labels on one side of their markers stay
``LABEL_GAP`` of the time axis apart however crowded the decisions and actions are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from breakfix.report.panels import LABEL_GAP, incident

T0 = datetime(2025, 1, 1, tzinfo=UTC)
STATES = ["Suspect", "Quarantined", "Repairing", "Validating", "Healthy"]


def _crowded() -> tuple[list[dict[str, object]], list[dict[str, object]], list[dict[str, object]]]:
    """An hour with a decision every 20 s (a flapping node) and an action every 30 s."""
    ev = [{"time": T0, "domain": "gpu_memory", "signal": "dbe", "weight": 1.0, "source": "dcgm"},
          {"time": T0 + timedelta(hours=1), "domain": "gpu_memory", "signal": "dbe", "weight": 1.0,
           "source": "dcgm"}]  # fmt: skip
    dec = [{"time": T0 + timedelta(seconds=20 * i), "from_state": "Healthy", "to_state": STATES[i % 5],
            "failure_class": "gpu_memory", "action": "gpu_reset", "mode": "auto", "confidence": 0.9,
            "reasons": "", "guard_failed": ""} for i in range(180)]  # fmt: skip
    act = [{"time": T0 + timedelta(seconds=30 * i), "kind": "result", "action": "gpu_reset",
            "status": "succeeded", "step": "s", "validation": "", "initiator": "automation"}
           for i in range(120)]  # fmt: skip
    return ev, dec, act


def test_labels_on_a_crowded_timeline_keep_their_distance() -> None:
    panel = incident("n1", *_crowded())
    assert panel.figure is not None
    span = 3600.0
    shown = 0
    for trace in panel.figure.data:
        if trace.text is None or trace.name == "evidence":
            continue
        last: dict[str, float] = {}
        for x, text, side in zip(trace.x, trace.text, trace.textposition, strict=True):
            if not text:
                continue
            shown += 1
            t = (x - T0).total_seconds()
            if side in last:
                assert (t - last[side]) / span >= LABEL_GAP, (trace.name, text, t, last[side])
            last[side] = t
    assert 10 <= shown <= 2 * 2 * (1 / LABEL_GAP + 1), "labels must still be drawn, and only as many as fit"
