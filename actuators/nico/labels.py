"""Pure rules for what the product writes on NICo: repair labels and issue categories.

NICo reads the repair outcome from the machine label ``repair_status`` (case-insensitive
``Completed``/``Failed``/``InProgress``; anything else, or none, is an incomplete repair:
``crates/api/src/handlers/instance.rs``). NICo's own OpenAPI example spells the key ``RepairStatus``;
the server reads ``repair_status``, so that is the key written. A label update replaces the whole map
and a map holds at most 10 pairs, so the product's labels are merged into what is there, and the
optional ones (``repair_eta``, then ``repair_details``) give way before anyone else's label does.
"""

from __future__ import annotations

from actuators.base import PermanentError

MAX_LABELS = 10
STATUS, DETAILS, ETA = "repair_status", "repair_details", "repair_eta"
OPTIONAL = (ETA, DETAILS)  # dropped first, in this order, when the map would exceed the limit
REPAIR_STATUSES = ("Completed", "Failed", "InProgress")

# The product's upper-case categories (tenant.report) and NICo's MachineHealthIssue categories.
TO_NICO = {"HARDWARE": "Hardware", "NETWORK": "Network", "PERFORMANCE": "Performance", "OTHER": "Other"}
FROM_NICO = {v.lower(): k for k, v in TO_NICO.items()}


def to_nico_category(category: str) -> str:
    """``HARDWARE`` -> ``Hardware``; an unknown category is ``Other`` (NICo rejects anything else)."""
    return TO_NICO.get(category.upper(), "Other")


def from_nico_category(category: str | None) -> str:
    """NICo's category (REST ``Hardware`` or the core's ``HARDWARE``/``Hardware`` in an override's
    ``issue_category``) -> the product's upper-case name; unknown or unspecified -> ``OTHER``."""
    return FROM_NICO.get((category or "").lower(), "OTHER")


def repair_status(labels: dict[str, str]) -> str | None:
    """The outcome NICo would read: one of :data:`REPAIR_STATUSES`, or None (missing or unknown)."""
    raw = labels.get(STATUS, "").lower().replace("_", "").replace("-", "")
    return {"completed": "Completed", "failed": "Failed", "inprogress": "InProgress"}.get(raw)


def with_repair(
    current: dict[str, str], status: str, details: str | None = None, eta: str | None = None
) -> dict[str, str]:
    """The whole label map to send: ``current`` with the repair labels set (stale details/eta from an
    older attempt removed). Raises :class:`PermanentError` when even ``repair_status`` alone does not
    fit without removing someone else's label.

    >>> with_repair({"RackIdentifier": "R1", "repair_eta": "old"}, "InProgress")
    {'RackIdentifier': 'R1', 'repair_status': 'InProgress'}
    """
    if status not in REPAIR_STATUSES:
        raise PermanentError(f"repair_status must be one of {REPAIR_STATUSES}, not {status!r}")
    out = {k: v for k, v in current.items() if k not in (STATUS, DETAILS, ETA)}
    out[STATUS] = status
    if details:
        out[DETAILS] = details[:255]
    if eta:
        out[ETA] = eta[:255]
    for key in OPTIONAL:
        if len(out) > MAX_LABELS:
            out.pop(key, None)
    if len(out) > MAX_LABELS:
        raise PermanentError(
            f"machine already carries {len(current)} labels: repair_status does not fit in NICo's "
            f"{MAX_LABELS} without removing an operator's label; free one and retry"
        )
    return out
