"""Machine health reports on NICo: the overrides that block allocation and route repairs.

NICo keeps one health report per ``source`` on each machine. The sources that matter here, as NICo's
core names them (``crates/health-report/src/lib.rs``, ``crates/api/src/handlers/instance.rs``):
``tenant-reported-issue`` (a tenant released the machine with an issue), ``repair-request`` (repair
automation should claim it), ``request-online-repair`` (the tenant keeps the instance while it is
repaired) and ``manual-maintenance`` (the admin CLI's OutForRepair template). The product writes its own
evidence under its own source (``breakfix`` by default) and removes only that source.

:class:`GrpcHealthReports` speaks the core's calls over gRPC with the messages of
:mod:`actuators.nico.proto`; :class:`HealthReports` is the seam a deployment with another transport
(REST health-report endpoints) implements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import grpc

from actuators.base import PermanentError, TemporaryError
from actuators.nico import proto

TENANT_REPORTED_ISSUE = "tenant-reported-issue"
REPAIR_REQUEST = "repair-request"
ONLINE_REPAIR = "request-online-repair"
MANUAL_MAINTENANCE = "manual-maintenance"
PREVENT_ALLOCATIONS = "PreventAllocations"
SUPPRESS_EXTERNAL_ALERTING = "SuppressExternalAlerting"

Mode = Literal["Merge", "Replace"]


@dataclass(frozen=True)
class Alert:
    id: str
    message: str = ""
    target: str | None = None
    tenant_message: str | None = None
    classifications: tuple[str, ...] = ()
    in_alert_since: datetime | None = None

    def fields(self) -> dict[str, Any]:
        """The alert's message parsed as JSON (NICo writes issue details that way), else empty."""
        try:
            parsed = json.loads(self.message)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class Report:
    source: str
    alerts: tuple[Alert, ...] = ()
    observed_at: datetime | None = None
    triggered_by: str | None = None
    successes: tuple[tuple[str, str | None], ...] = field(default=())


class HealthReports(Protocol):
    """The core's machine health-report calls."""

    def list(self, machine_id: str) -> list[tuple[Report, Mode]]: ...

    def insert(self, machine_id: str, report: Report, mode: Mode) -> None: ...

    def remove(self, machine_id: str, source: str) -> None: ...


def _ts(value: datetime, target: Any) -> None:
    target.FromDatetime(value.astimezone(UTC))


def to_message(report: Report) -> Any:
    msg = proto.HealthReport(source=report.source)
    if report.triggered_by is not None:
        msg.triggered_by = report.triggered_by
    if report.observed_at is not None:
        _ts(report.observed_at, msg.observed_at)
    for sid, target in report.successes:
        s = msg.successes.add(id=sid)
        if target is not None:
            s.target = target
    for a in report.alerts:
        m = msg.alerts.add(id=a.id, message=a.message, classifications=list(a.classifications))
        if a.target is not None:
            m.target = a.target
        if a.tenant_message is not None:
            m.tenant_message = a.tenant_message
        if a.in_alert_since is not None:
            _ts(a.in_alert_since, m.in_alert_since)
    return msg


def _when(msg: Any, name: str) -> datetime | None:
    return getattr(msg, name).ToDatetime(tzinfo=UTC) if msg.HasField(name) else None


def from_message(msg: Any) -> Report:
    alerts = tuple(
        Alert(
            id=a.id,
            message=a.message,
            target=a.target if a.HasField("target") else None,
            tenant_message=a.tenant_message if a.HasField("tenant_message") else None,
            classifications=tuple(a.classifications),
            in_alert_since=_when(a, "in_alert_since"),
        )
        for a in msg.alerts
    )
    return Report(
        source=msg.source,
        alerts=alerts,
        observed_at=_when(msg, "observed_at"),
        triggered_by=msg.triggered_by if msg.HasField("triggered_by") else None,
        successes=tuple((s.id, s.target if s.HasField("target") else None) for s in msg.successes),
    )


_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


class GrpcHealthReports:
    """Health reports through NICo's core over gRPC (``forge.Forge``), with the same JWT bearer token
    as the REST calls in the ``authorization`` metadata. ``channel``: TLS in production
    (:func:`grpc.secure_channel`); tests pass an insecure loopback channel."""

    def __init__(self, channel: grpc.Channel, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._insert = channel.unary_unary(
            proto.INSERT,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=proto.Empty.FromString,
        )
        self._remove = channel.unary_unary(
            proto.REMOVE,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=proto.Empty.FromString,
        )
        self._list = channel.unary_unary(
            proto.LIST,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=proto.ListHealthReportResponse.FromString,
        )

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout_s, metadata=self.metadata)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            detail = (
                f"NICo health report call failed: {code}: {err.details() if hasattr(err, 'details') else err}"
            )
            if code in _TRANSIENT:
                raise TemporaryError(detail, retry_after_s=2.0) from err
            raise PermanentError(detail) from err

    def list(self, machine_id: str) -> list[tuple[Report, Mode]]:
        resp = self._call(self._list, proto.MachineId(id=machine_id))
        names = {v: k for k, v in proto.APPLY_MODES.items()}
        return [(from_message(e.report), names.get(e.mode, "Merge")) for e in resp.health_report_entries]  # type: ignore[misc]

    def insert(self, machine_id: str, report: Report, mode: Mode) -> None:
        entry = proto.HealthReportEntry(report=to_message(report), mode=proto.APPLY_MODES[mode])
        req = proto.InsertMachineHealthReportRequest(
            machine_id=proto.MachineId(id=machine_id), health_report_entry=entry
        )
        self._call(self._insert, req)

    def remove(self, machine_id: str, source: str) -> None:
        req = proto.RemoveMachineHealthReportRequest(machine_id=proto.MachineId(id=machine_id), source=source)
        self._call(self._remove, req)
