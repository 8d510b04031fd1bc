"""Discovering repair work on NICo: machines whose health carries a ``repair-request`` override.

NICo's own repair automation finds work by polling, and so does the product as NICo's repair system.
A machine found here does not get repaired here: the poller turns it into a ``tenant.report`` event on
the events topic, so it reaches the node stage like any tenant's report and is repaired only through
a proposal, the guard's decision and the actuator stage's playbook (claim, repair, label, release).

:func:`scan` is the pure part (what one poll means, given what earlier polls saw); :class:`NicoPoller`
fetches, scans and publishes. What the poll notices besides work, as alerts (NICo's repair manual,
"Operational Scenarios"):

- ``auto_repair_disabled``: a ``tenant-reported-issue`` without ``repair-request``: NICo's auto-repair is
  off, so a person must request the repair (the product does not request it on a tenant's behalf);
- ``never_picked_up``: a ``repair-request`` older than ``max_wait_s`` with no repair instance on the
  machine (the guard held it, the kill switch is on, or the actuator stage is down);
- ``out_for_repair``: the machine already carries the product's OutForRepair alert: it is never
  sent through automated repair again until a person clears it.

A ``request-online-repair`` override (the tenant keeps its instance, NICo shows it ``Repairing``) is
work too: its event says so, and the nico actuator then claims and releases nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from actuators.nico import labels as L
from actuators.nico.health import ONLINE_REPAIR, REPAIR_REQUEST, TENANT_REPORTED_ISSUE, HealthReports, Report
from actuators.nico.rest import NicoRest

log = logging.getLogger(__name__)

WATCHED_ALERTS = frozenset({"RequestRepair", "TenantReportedIssue", "RequestOnlineRepair"})


@dataclass(frozen=True)
class MachineView:
    """One machine as a poll sees it: REST fields and its health reports by source."""

    machine_id: str
    instance_id: str | None
    reports: dict[str, Report]


@dataclass(frozen=True)
class Alerted:
    machine_id: str
    kind: str
    detail: str


@dataclass
class PollState:
    """What earlier polls saw: the repair requests already turned into events (by machine, the
    request's fingerprint) and when each was first seen; alerts already raised."""

    emitted: dict[str, str] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)
    alerted: set[tuple[str, str]] = field(default_factory=set)


def _fingerprint(r: Report) -> str:
    stamp = r.observed_at.isoformat() if r.observed_at else ""
    return stamp + "|" + "|".join(a.message for a in r.alerts)


def _issue(r: Report) -> dict[str, Any]:
    for a in r.alerts:
        found = a.fields()
        if found:
            return found
    return {}


def scan(
    machines: list[MachineView], state: PollState, now: float, max_wait_s: float, own_source: str
) -> tuple[list[dict[str, Any]], list[Alerted]]:
    """The events to publish and the alerts to raise for one poll; ``state`` is updated in place."""
    events: list[dict[str, Any]] = []
    alerts: list[Alerted] = []

    def alert(m: str, kind: str, detail: str) -> None:
        if (m, kind) not in state.alerted:
            state.alerted.add((m, kind))
            alerts.append(Alerted(m, kind, detail))

    for m in machines:
        online = m.reports.get(ONLINE_REPAIR)
        request = m.reports.get(REPAIR_REQUEST) or online
        ours = m.reports.get(own_source)
        if ours is not None and any(a.target == "OutForRepair" for a in ours.alerts):
            alert(m.machine_id, "out_for_repair", "escalated by break-fix: waits for a person")
            continue
        if request is None:
            state.first_seen.pop(m.machine_id, None)
            state.emitted.pop(m.machine_id, None)
            if TENANT_REPORTED_ISSUE in m.reports:
                alert(m.machine_id, "auto_repair_disabled", "tenant-reported-issue without repair-request: "
                      "request the repair by hand (nico-admin-cli ... --template RequestRepair)")  # fmt: skip
            continue
        state.alerted.discard((m.machine_id, "auto_repair_disabled"))
        seen = state.first_seen.setdefault(m.machine_id, now)
        claimed = m.instance_id is not None and online is None
        if not claimed and ours is None and now - seen > max_wait_s:
            alert(m.machine_id, "never_picked_up", f"{request.source} unclaimed for {now - seen:.0f}s")
        fp = _fingerprint(request)
        if ours is not None or state.emitted.get(m.machine_id) == fp or claimed:
            continue  # the product's own request (its playbook is on it), already sent, or claimed
        state.emitted[m.machine_id] = fp
        events.append(_report_event(m, request, now, online=online is not None))
    return events, alerts


def _report_event(m: MachineView, request: Report, now: float, online: bool) -> dict[str, Any]:
    issue = _issue(m.reports.get(TENANT_REPORTED_ISSUE) or request) or _issue(request)
    summary = str(issue.get("summary") or "repair requested on NICo")[:200]
    details = str(issue.get("details") or "")
    if online:
        details = f"online repair: the tenant keeps instance {m.instance_id}. {details}"
    digest = hashlib.sha256(_fingerprint(request).encode()).hexdigest()[:16]
    return {
        "id": f"nico-repair-request:{m.machine_id}:{digest}",
        "type": "tenant.report",
        "source": "nico-poller",
        "time": datetime.fromtimestamp(now, UTC).isoformat(),
        "node": m.machine_id,
        "data": {
            "instance_id": str(issue.get("tenant_organization_id") or f"nico:{m.machine_id}")[:200],
            "category": L.from_nico_category(issue.get("issue_category")),
            "summary": summary,
            "details": details[:4000],
        },
    }


class NicoPoller:
    """Fetches machines from NICo's REST API, their reports over the core's health calls, and
    publishes what :func:`scan` finds. Only machines whose aggregate health shows a watched alert
    are asked for their reports, so a poll costs one paged list plus one call per flagged machine."""

    def __init__(
        self,
        rest: NicoRest,
        health: HealthReports,
        publish: Callable[[dict[str, Any]], None],
        *,
        own_source: str,
        max_wait_s: float = 3600.0,
        on_alert: Callable[[Alerted], None] | None = None,
        site_id: str | None = None,
    ) -> None:
        self.rest, self.health, self.publish = rest, health, publish
        self.own_source, self.max_wait_s, self.site_id = own_source, max_wait_s, site_id
        self.on_alert = on_alert or (lambda a: log.warning("NICo %s: %s: %s", a.kind, a.machine_id, a.detail))
        self.state = PollState()

    def views(self) -> list[MachineView]:
        out = []
        for m in self.rest.machines(self.site_id):
            alerts = (m.get("health") or {}).get("alerts") or []
            if not any(a.get("id") in WATCHED_ALERTS or a.get("target") == "OutForRepair" for a in alerts):
                continue
            reports = {r.source: r for r, _ in self.health.list(m["id"])}
            out.append(MachineView(m["id"], m.get("instanceId"), reports))
        return out

    def poll_once(self, now: float) -> tuple[list[dict[str, Any]], list[Alerted]]:
        events, alerts = scan(self.views(), self.state, now, self.max_wait_s, self.own_source)
        for ev in events:
            self.publish(ev)
        for a in alerts:
            self.on_alert(a)
        return events, alerts
