"""The guardrails the guard consults, by the name each writes into a decision's ``guard`` list.

Where this sits: ``policy/guard.py`` judges every proposal with these checks and records each one
(name, verdict, figures) in the decision, so a decision explains itself to an auditor. This table is
the registry of those names with what each protects: ``breakfix explain`` and the docs read it, and
the guardrail contract suite (``tests/contracts/test_guardrails.py``) runs one case per name and
fails when the guard writes a name that is not here or a name here has no case.

>>> GUARDRAILS["headroom"]
'the pool keeps its minimum share of healthy GPUs after this node leaves'
>>> "killswitch" in GUARDRAILS
True
"""

from __future__ import annotations

GUARDRAILS: dict[str, str] = {
    "replay": "replayed input is recorded, never executed",
    "stale": "evidence older than the stale cutoff no longer speaks for the node",
    "proposal_age": "a queued proposal older than the stale cutoff is never granted",
    "killswitch": "nothing executes while the global or the pool's kill switch is engaged",
    "mode": "a failure class whose mode is not auto only recommends",
    "exclusion": "an excluded node or pool only gets recommendations",
    "approval": "an action that needs a person's approval waits for it",
    "rate_limit": "at most so many executable decisions per hour",
    "concurrency_rack": "at most so many nodes of one rack in flight",
    "concurrency_pool": "at most so many nodes of one pool in flight",
    "concurrency_sku": "at most so many nodes of one SKU in flight",
    "headroom": "the pool keeps its minimum share of healthy GPUs after this node leaves",
    "in_flight": "an operator plan step never starts a second run on a node one is acting on",
    "breaker": "too many quarantines in the window opens the circuit breaker",
    "blast_radius": "the same signal on many nodes of one scope is an incident, not many faults",
}

CAPACITY: frozenset[str] = frozenset({"concurrency_rack", "concurrency_pool", "concurrency_sku", "headroom"})
"""The guardrails that only say "not now": a proposal refused by these alone waits in the guard's
queue (a held decision) and is released when a slot frees, an operator plan's step included; any
other refusal is final for that request. The plan driver reads a held step by this same set.

>>> sorted(CAPACITY)[0]
'concurrency_pool'
"""


def capacity_only(failed: list[str] | tuple[str, ...]) -> bool:
    """Whether a refusal names only capacity guardrails (and some).

    >>> capacity_only(["concurrency_rack"]), capacity_only(["headroom", "killswitch"]), capacity_only([])
    (True, False, False)
    """
    return bool(failed) and all(name in CAPACITY for name in failed)
