"""``scontrol show node`` text → node documents shaped like ``sinfo --json``'s, for Slurm without JSON.

Slurm before 21.08, or built without its JSON serializer, answers only text. ``scontrol show node``
prints ``Key=Value`` pairs, one node per line with ``-o`` or over several indented lines without it.
Two values hold spaces: ``OS=`` (the kernel's uname) and ``Reason=`` (free text an operator typed,
followed by ``[user@time]``), so a value runs to the next ``Key=`` and a reason runs to the end of
its line (or, in the one-line form, to the end of the record or a key Slurm prints after it).
The reason's time is the controller's local time without a zone; it is read in this host's zone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_KEY = re.compile(r"(?:(?<=\s)|^)([A-Z][A-Za-z_]*)=")
# Keys some Slurm releases print after Reason= on the same line of `-o` output.
_AFTER_REASON = frozenset({"Comment", "Extra", "ResumeAfterTime", "InstanceId", "InstanceType"})
_REASON_TAIL = re.compile(r"^(?P<text>.*?)\s*\[(?P<user>[^@\]]+)@(?P<when>[0-9T:\-]+)\]$")
_NULL = {"(null)", "N/A", "n/a", "None"}


def _pairs(record: str) -> dict[str, str]:
    """Key → raw value of one node record (either form)."""
    keys = list(_KEY.finditer(record))
    out: dict[str, str] = {}
    i = 0
    while i < len(keys):
        m = keys[i]
        j = i + 1
        if m.group(1) == "Reason":
            while (
                j < len(keys)
                and keys[j].group(1) not in _AFTER_REASON
                and "\n" not in record[m.end() : keys[j].start()]
            ):
                j += 1
        end = keys[j].start() if j < len(keys) else len(record)
        out.setdefault(m.group(1), record[m.end() : end].strip())
        i = j
    return out


def _epoch(text: str) -> int | None:
    try:
        return int(datetime.fromisoformat(text).astimezone().timestamp())
    except ValueError:
        return None


def _value(pairs: dict[str, str], key: str) -> str:
    v = pairs.get(key, "")
    return "" if v in _NULL else v


def node_doc(pairs: dict[str, str]) -> dict[str, Any]:
    """One record as the fields of a ``sinfo --json`` node that breakfix reads."""
    reason, who, when = _value(pairs, "Reason"), None, None
    tail = _REASON_TAIL.match(reason)
    if tail:
        reason, who, when = tail["text"], tail["user"], _epoch(tail["when"])
    partitions = _value(pairs, "Partitions")
    return {
        "name": pairs["NodeName"],
        "state": [s for s in _value(pairs, "State").split("+") if s] or ["UNKNOWN"],
        "reason": reason,
        "reason_set_by_user": who,
        "reason_changed_at": when or 0,
        "gres": _value(pairs, "Gres"),
        "gres_used": _value(pairs, "GresUsed"),
        "partitions": [p for p in partitions.split(",") if p],
        "active_features": _value(pairs, "ActiveFeatures"),
        "boot_time": _epoch(_value(pairs, "BootTime")) or 0,
        "operating_system": _value(pairs, "OS"),
    }


def parse_show_node(text: str) -> dict[str, Any]:
    """``scontrol show node [-o]`` output → ``{"nodes": [...]}`` as ``sinfo --json`` would give.

    >>> out = parse_show_node("NodeName=gpu02 Arch=x86_64 State=IDLE+DRAIN Partitions=gpu "
    ...     "OS=Linux 6.1.0 #1 SMP Reason=bad fan xid=79 [root@2026-12-06T06:56:37]")
    >>> n = out["nodes"][0]
    >>> n["state"], n["reason"], n["reason_set_by_user"], n["operating_system"]
    (['IDLE', 'DRAIN'], 'bad fan xid=79', 'root', 'Linux 6.1.0 #1 SMP')
    """
    records: list[str] = []
    for line in text.splitlines():
        if line.startswith("NodeName="):
            records.append(line)
        elif line.strip() and records:
            records[-1] += "\n" + line
    return {"nodes": [node_doc(_pairs(r)) for r in records]}
