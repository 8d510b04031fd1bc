"""When does a decision "belong" to a label: same node, compatible GPU, inside the label's window.

Tolerances: a decision may come slightly before a label's recorded start (the first symptom and the
label are stamped by different events) and a while after its end (a quarantine that outlives the
repair by minutes is still about that fault).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.decision import Decision
from sim.simulator.labels import Label

BEFORE_S = 120.0
AFTER_S = 3600.0


@dataclass(frozen=True)
class Tolerance:
    before_s: float = BEFORE_S
    after_s: float = AFTER_S


def gpu_compatible(decision_gpu: int | None, label_gpu: int | None) -> bool:
    """A node-wide decision covers every GPU; a per-GPU one only its own."""
    return decision_gpu is None or label_gpu is None or decision_gpu == label_gpu


class LabelIndex:
    """Labels by node, for O(labels of the node) lookups per decision."""

    def __init__(self, labels: Iterable[Label], tol: Tolerance | None = None) -> None:
        self.tol = tol or Tolerance()
        self.by_node: dict[str, list[Label]] = defaultdict(list)
        for label in labels:
            self.by_node[label.node].append(label)

    def matching(self, d: Decision, truth: str = "fault") -> list[Label]:
        return [
            lb
            for lb in self.by_node.get(d.node, ())
            if lb.truth == truth
            and gpu_compatible(d.gpu, lb.gpu)
            and lb.active(d.time, self.tol.before_s, self.tol.after_s)
        ]

    def in_window(self, label: Label, d: Decision) -> bool:
        return (
            d.node == label.node
            and gpu_compatible(d.gpu, label.gpu)
            and label.active(d.time, self.tol.before_s, self.tol.after_s)
        )
