"""A pool's headroom: whether it keeps its minimum share of healthy GPUs once some leave.

One function for both places that ask: the guard, which decides (``policy.guard``, over its own
record of the fleet), and a repair plan's preview (``breakfix.api.plans``, over the store's view),
which only shows an approver what the guard will compute. Pure, integers in, figures out.

>>> pool_headroom(total_gpus=32, out_gpus=16, leaving_gpus=8, min_fraction=0.25)
Headroom(after=8, minimum=8.0, ok=True)
>>> pool_headroom(total_gpus=16, out_gpus=0, leaving_gpus=16, min_fraction=0.5).ok
False
"""

from __future__ import annotations

from typing import NamedTuple


class Headroom(NamedTuple):
    after: int
    """Healthy GPUs left in the pool once the leaving ones are out."""
    minimum: float
    """The pool's minimum healthy GPUs: its fraction of the pool's total, not rounded (a whole
    number of GPUs passes exactly when it passes the rounded-up figure)."""
    ok: bool


def pool_headroom(total_gpus: int, out_gpus: int, leaving_gpus: int, min_fraction: float) -> Headroom:
    """``out_gpus``: the pool's GPUs already out of service (in flight, escalated, lost on their own);
    ``leaving_gpus``: those the decision or plan would take out now."""
    minimum = min_fraction * total_gpus
    after = total_gpus - out_gpus - leaving_gpus
    return Headroom(after=after, minimum=minimum, ok=after >= minimum)
