"""A NICo stand-in on loopback: NICo's REST paths for machines and instances, and the core's
machine health-report calls over gRPC, with NICo's repair rules.

NICo itself (a Go REST service, a Rust core, PostgreSQL, site agents) cannot run here. What this
serves, and from where:

- REST: ``/v2/org/{org}/{api_name}/machine[/{id}]`` (GET, PATCH labels) and
  ``/instance[/{id}]`` (POST, GET, DELETE with ``InstanceDeleteRequest``), with the
  shapes and status codes of NICo's published OpenAPI document. EVERY request is validated against
  that document with openapi-core before it is served (an invalid one gets 400 and is recorded in
  :attr:`FakeNico.violations`), and every response is validated before it is sent (recorded too).
  Two answers are outside the document and not validated: the 401 for a missing or unknown token
  (checked before validation, as NICo's auth middleware does; no operation declares 401) and the
  router's 404 for a path under another ``api_name``.
  The document is read from where the caller says (tests pass ``../shared/nico/spec.yaml``).
- Stricter than the document, as NICo's Go handlers are (``rest-api/api/pkg/api/model``): a released
  issue needs a category of the four and a summary; labels at most 10 pairs; a label update goes alone.
- The release rules of ``crates/api/src/handlers/instance.rs``: a tenant's release with an issue
  applies ``tenant-reported-issue`` (and ``repair-request`` when auto-repair is on); a repair
  tenant's release reads the machine label ``repair_status`` (case-insensitive): Completed with no
  new issue removes both, anything else removes ``repair-request`` and applies
  ``tenant-reported-issue`` (fallback summary ``RepairSystem processing incomplete``).
- gRPC ``forge.Forge`` Insert/Remove/ListMachineHealthReports as ``crates/api/src/handlers/health.rs``:
  an insert replaces the source's earlier report; removing an absent source is NOT_FOUND.

Simplified: machine ``status`` is ``InUse`` with an instance, ``Ready`` when free and without a
PreventAllocations alert, else ``Maintenance``; an instance is ``Ready`` at once (no provisioning) and
a release deletes it at once (NICo terminates it asynchronously after its 202).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

import grpc
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import HttpProvider
from werkzeug.datastructures import Headers, ImmutableMultiDict

from actuators.nico import proto
from actuators.nico.health import Report, from_message

SPEC_SERVER = "https://nico-rest-api.nico.svc.cluster.local"
PREVENT = "PreventAllocations"
INCOMPLETE = "RepairSystem processing incomplete"
EXCLUSIVE = "only one of setMaintenanceMode, instanceTypeId, clearInstanceType or labels can be set at a time"
NOT_READY = (
    "Machine is not in Ready state, but it can be provisioned by setting allowUnhealthyMachine to true"
)
_SPECS: dict[Path, OpenAPI] = {}


class _HttpAuth(HttpProvider):
    """RFC 7235 auth schemes are case-insensitive: NICo's document says ``scheme: Bearer`` and
    clients send ``Bearer``, but openapi-core 0.19 compares the lower-cased header scheme with the
    document's spelling as written, so every valid request would fail security validation."""

    def __call__(self, parameters: RequestParameters) -> Any:
        header = parameters.header.get("Authorization") or ""
        kind, _, credentials = header.partition(" ")
        if kind.lower() != str(self.scheme["scheme"]).lower() or not credentials:
            raise SecurityProviderError("Missing or unparsable bearer authorization header.")
        return credentials


class _Security(SecurityProviderFactory):
    PROVIDERS = {**SecurityProviderFactory.PROVIDERS, "http": _HttpAuth}


def load_spec(path: Path) -> OpenAPI:
    """The parsed document, once per process (parsing NICo's 780 KB document takes ~1.5 s)."""
    key = path.resolve()
    if key not in _SPECS:
        _SPECS[key] = OpenAPI.from_file_path(str(key), config=Config(security_provider_factory=_Security()))
    return _SPECS[key]


@dataclass
class _Req:
    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters
    host_url: str = SPEC_SERVER


@dataclass
class _Resp:
    status_code: int
    data: bytes
    content_type: str
    headers: Headers = field(default_factory=Headers)


@dataclass
class Tenant:
    tenant_id: str
    org: str
    targeted: bool = False
    """Targeted instance creation capability (needed for machineId, allowUnhealthyMachine, isRepairTenant)."""


@dataclass
class Machine:
    id: str
    site_id: str
    labels: dict[str, str] = field(default_factory=dict)
    instance_id: str | None = None
    reports: dict[str, tuple[Report, int]] = field(default_factory=dict)
    created: str = "2026-01-05T00:00:00Z"


class FakeNico:
    def __init__(
        self, spec: Path, *, org: str = "acme", api_name: str = "nico", auto_repair: bool = True
    ) -> None:
        self.openapi = load_spec(spec)
        self.org, self.api_name, self.auto_repair = org, api_name, auto_repair
        self.site_id = str(uuid.uuid4())
        self.tokens: dict[str, Tenant] = {}
        self.machines: dict[str, Machine] = {}
        self.instances: dict[str, dict[str, Any]] = {}
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.grpc_calls: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._grpc.add_generic_rpc_handlers((self._grpc_handlers(),))
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")

    # --- set-up -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def add_tenant(self, token: str, *, targeted: bool = False) -> Tenant:
        t = Tenant(str(uuid.uuid4()), self.org, targeted)
        self.tokens[token] = t
        return t

    def add_machine(self, machine_id: str, labels: dict[str, str] | None = None) -> Machine:
        m = Machine(machine_id, self.site_id, dict(labels or {}))
        self.machines[machine_id] = m
        return m

    def place(self, machine_id: str, tenant: Tenant, name: str = "tenant-workload") -> str:
        """An ordinary tenant's instance on the machine (what a tenant later releases)."""
        return self._new_instance(tenant, machine_id, name, {})["id"]  # type: ignore[no-any-return]

    def __enter__(self) -> FakeNico:
        self._thread.start()
        self._grpc.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._grpc.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    # --- views ------------------------------------------------------------------------------------

    def sources(self, machine_id: str) -> set[str]:
        return set(self.machines[machine_id].reports)

    def alerts(self, m: Machine) -> list[dict[str, Any]]:
        out = []
        for r, _ in m.reports.values():
            for a in r.alerts:
                out.append(
                    {
                        "id": a.id,
                        "target": a.target,
                        "inAlertSince": a.in_alert_since.isoformat() if a.in_alert_since else None,
                        "message": a.message,
                        "tenantMessage": a.tenant_message,
                        "classifications": list(a.classifications),
                    }
                )
        return out

    def allocatable(self, m: Machine) -> bool:
        return not any(PREVENT in a["classifications"] for a in self.alerts(m))

    def machine_json(self, m: Machine) -> dict[str, Any]:
        inst = self.instances.get(m.instance_id or "")
        status = "InUse" if inst else ("Ready" if self.allocatable(m) else "Maintenance")
        return {
            "id": m.id,
            "siteId": m.site_id,
            "instanceTypeId": None,
            "instanceId": m.instance_id,
            "tenantId": inst["tenantId"] if inst else None,
            "controllerMachineId": m.id,
            "hwSkuDeviceType": "gpu",
            "maintenanceMessage": None,
            "health": {
                "source": "aggregate-host-health",
                "observedAt": None,
                "successes": [],
                "alerts": self.alerts(m),
            },
            "labels": dict(m.labels),
            "status": status,
            "isUsableByTenant": inst is None and self.allocatable(m),
            "created": m.created,
            "updated": m.created,
        }

    # --- REST -------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                status, payload, extra = fake.serve(self.command, self.path, self.headers, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        return Handler

    def serve(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any, dict[str, str]]:
        url = urlparse(raw_path)
        query = parse_qs(url.query)
        prefix = f"/v2/org/{self.org}/{self.api_name}"
        spec_path = (
            url.path.replace(f"/{self.api_name}/", "/nico/", 1) if url.path.startswith(prefix) else url.path
        )
        req = _Req(
            method=method.lower(),
            path=spec_path,
            body=body or None,
            content_type=(headers.get("Content-Type") or "application/json").lower(),
            parameters=RequestParameters(
                query=ImmutableMultiDict([(k, v) for k, vs in query.items() for v in vs]),
                header=Headers(list(headers.items())),
            ),
        )
        tenant = self.tokens.get((headers.get("Authorization") or "").removeprefix("Bearer "))
        if tenant is None:
            self.requests.append((method, url.path, 401))
            return (
                401,
                {"source": "nico", "message": "Request is missing a valid JWT bearer token", "data": None},
                {},
            )
        try:
            self.openapi.validate_request(req)
        except Exception as err:  # openapi-core's errors carry the schema errors in __cause__
            why = f"{method} {spec_path}: request: {err}: {getattr(err, '__cause__', '') or ''}"
            self.violations.append(why)
            return self._answer(
                req, 400, {"source": "nico", "message": why[:500], "data": None}, {}, url.path
            )
        if not url.path.startswith(prefix + "/"):
            # Not this deployment's path segment: the router's own 404, which no operation describes.
            self.requests.append((method, url.path, 404))
            return 404, _err("Not found"), {}
        with self._lock:
            status, payload, extra = self._route(method, url.path[len(prefix) :], query, tenant, body)
        return self._answer(req, status, payload, extra, url.path)

    def _answer(
        self, req: _Req, status: int, payload: Any, extra: dict[str, str], path: str
    ) -> tuple[int, Any, dict[str, str]]:
        self.requests.append((req.method.upper(), path, status))
        data = b"" if payload is None else json.dumps(payload).encode()
        resp = _Resp(
            status, data, "application/json" if payload is not None else "", Headers(list(extra.items()))
        )
        try:
            self.openapi.validate_response(req, resp)
        except Exception as err:
            self.violations.append(
                f"{req.method.upper()} {req.path}: response {status}: {err}: {err.__cause__ or ''}"
            )
        return status, payload, extra

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], tenant: Tenant, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        doc = json.loads(body) if body else {}
        if path == "/machine" and method == "GET":
            return self._list_machines(query)
        m = re.fullmatch(r"/machine/([^/]+)", path)
        if m:
            machine = self.machines.get(m.group(1))
            if machine is None:
                return 404, _err(f"Machine with ID: {m.group(1)} not found"), {}
            if method == "GET":
                return 200, self.machine_json(machine), {}
            return self._update_machine(machine, doc)
        if path == "/instance" and method == "POST":
            return self._create_instance(tenant, doc)
        m = re.fullmatch(r"/instance/([^/]+)", path)
        if m:
            inst = self.instances.get(m.group(1))
            if inst is None or inst["tenantId"] != tenant.tenant_id:
                return 404, _err(f"Instance with ID: {m.group(1)} not found"), {}
            if method == "GET":
                return 200, inst, {}
            if method == "DELETE":
                return self._release(inst, tenant, doc)
            return 405, _err(f"this stand-in does not serve {method} on an instance"), {}
        return 404, _err("Not found"), {}

    def _list_machines(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        page = int(query.get("pageNumber", ["1"])[0])
        size = int(query.get("pageSize", ["20"])[0])
        rows = [self.machine_json(m) for _, m in sorted(self.machines.items())]
        window = rows[(page - 1) * size : page * size]
        pagination = json.dumps(
            {"pageNumber": page, "pageSize": size, "total": len(rows), "orderBy": "ID_ASC"}
        )
        return 200, window, {"X-Pagination": pagination}

    def _update_machine(self, machine: Machine, doc: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        given = [
            k
            for k in ("instanceTypeId", "clearInstanceType", "setMaintenanceMode", "labels")
            if doc.get(k) is not None
        ]
        if len(given) != 1:
            return (
                400,
                _err(EXCLUSIVE),
                {},
            )
        if given != ["labels"]:
            return 400, _err("this stand-in serves label updates only"), {}
        bad = _labels_error(doc["labels"])
        if bad:
            return 400, _err(bad), {}
        machine.labels = dict(doc["labels"])  # the whole map is replaced
        return 200, self.machine_json(machine), {}

    def _new_instance(
        self, tenant: Tenant, machine_id: str, name: str, labels: dict[str, str]
    ) -> dict[str, Any]:
        iid = str(uuid.uuid4())
        inst = {
            "id": iid,
            "name": name,
            "tenantId": tenant.tenant_id,
            "siteId": self.site_id,
            "machineId": machine_id,
            "labels": labels,
            "status": "Ready",
            "created": "2026-01-05T00:00:00Z",
            "updated": "2026-01-05T00:00:00Z",
        }
        self.instances[iid] = inst
        self.machines[machine_id].instance_id = iid
        return inst

    def _create_instance(self, tenant: Tenant, doc: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if doc.get("tenantId") != tenant.tenant_id:
            return 403, _err("Tenant ID in request does not match the Tenant of the org"), {}
        mid = doc.get("machineId")
        if mid is None:
            return 400, _err("this stand-in serves targeted instance creation only"), {}
        if not tenant.targeted:
            return (
                403,
                _err("Tenant does not have capability to create Instances using specific Machine ID"),
                {},
            )
        machine = self.machines.get(mid)
        if machine is None:
            return 400, _err(f"Machine with ID: {mid} not found"), {}
        if machine.instance_id:
            return 400, _err("Machine is assigned to an Instance"), {}
        if not self.allocatable(machine) and not doc.get("allowUnhealthyMachine"):
            return (
                400,
                _err(NOT_READY),
                {},
            )
        bad = _labels_error(doc.get("labels") or {})
        if bad:
            return 400, _err(bad), {}
        return 201, self._new_instance(tenant, mid, doc["name"], dict(doc.get("labels") or {})), {}

    def _release(
        self, inst: dict[str, Any], tenant: Tenant, doc: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        issue = doc.get("machineHealthIssue")
        if issue is not None:
            if issue.get("category") not in ("Hardware", "Network", "Performance", "Other"):
                return 400, _err("machineHealthIssue.category: must be a valid value"), {}
            if not issue.get("summary"):
                return 400, _err("machineHealthIssue.summary: cannot be blank"), {}
        repair = bool(doc.get("isRepairTenant"))
        if repair and not tenant.targeted:
            return 403, _err("Tenant does not have capability to set IsRepairTenant"), {}
        machine = self.machines[inst["machineId"]]
        del self.instances[inst["id"]]
        machine.instance_id = None
        if repair:
            self._repair_release(machine, issue, tenant)
        elif issue is not None:
            machine.reports["tenant-reported-issue"] = (
                _issue_report("tenant-reported-issue", issue, tenant),
                0,
            )
            if self.auto_repair:
                machine.reports["repair-request"] = (_issue_report("repair-request", issue, None), 0)
        return 202, None, {}

    def _repair_release(self, machine: Machine, issue: dict[str, Any] | None, tenant: Tenant) -> None:
        if "repair-request" not in machine.reports:
            if issue is not None:
                machine.reports["tenant-reported-issue"] = (
                    _issue_report("tenant-reported-issue", issue, tenant),
                    0,
                )
            return
        status = machine.labels.get("repair_status", "").lower()
        del machine.reports["repair-request"]
        if status == "completed":
            if issue is not None:
                machine.reports["tenant-reported-issue"] = (
                    _issue_report("tenant-reported-issue", issue, tenant),
                    0,
                )
            else:
                machine.reports.pop("tenant-reported-issue", None)
            return
        issue = issue or {
            "category": "Other",
            "summary": INCOMPLETE,
            "details": f"repair_status={status or 'missing'}",
        }
        machine.reports["tenant-reported-issue"] = (_issue_report("tenant-reported-issue", issue, tenant), 0)

    # --- gRPC -------------------------------------------------------------------------------------

    def _grpc_handlers(self) -> grpc.GenericRpcHandler:
        def handler(fn: Any, request_type: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=request_type.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )

        return grpc.method_handlers_generic_handler(
            proto.SERVICE,
            {
                "InsertMachineHealthReport": handler(self._insert, proto.InsertMachineHealthReportRequest),
                "RemoveMachineHealthReport": handler(self._remove, proto.RemoveMachineHealthReportRequest),
                "ListMachineHealthReports": handler(self._list, proto.MachineId),
            },
        )

    def _machine_for(self, machine_id: str, context: grpc.ServicerContext, method: str) -> Machine:
        md = dict(context.invocation_metadata())
        if md.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown bearer token")
        self.grpc_calls.append((method, machine_id))
        m = self.machines.get(machine_id)
        if m is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"machine not found: {machine_id}")
        assert m is not None
        return m

    def _insert(self, req: Any, context: grpc.ServicerContext) -> Any:
        if not req.HasField("health_report_entry") or not req.health_report_entry.HasField("report"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "health_report_entry.report is required")
        with self._lock:
            m = self._machine_for(req.machine_id.id, context, "insert")
            report = from_message(req.health_report_entry.report)
            if report.observed_at is None:
                report = Report(
                    report.source, report.alerts, datetime.now(UTC), report.triggered_by, report.successes
                )
            m.reports[report.source] = (report, req.health_report_entry.mode)
        return proto.Empty()

    def _remove(self, req: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            m = self._machine_for(req.machine_id.id, context, "remove")
            if req.source not in m.reports:
                context.abort(grpc.StatusCode.NOT_FOUND, f"machine with source not found: {req.source}")
            del m.reports[req.source]
        return proto.Empty()

    def _list(self, req: Any, context: grpc.ServicerContext) -> Any:
        from actuators.nico.health import to_message

        with self._lock:
            m = self._machine_for(req.id, context, "list")
            entries = [
                proto.HealthReportEntry(report=to_message(r), mode=mode) for r, mode in m.reports.values()
            ]
        return proto.ListHealthReportResponse(health_report_entries=entries)


def _err(message: str) -> dict[str, Any]:
    return {"source": "nico", "message": message, "data": None}


def _labels_error(labels: dict[str, str]) -> str | None:
    if len(labels) > 10:
        return "up to 10 key/value pairs can be specified in labels"
    for k, v in labels.items():
        if not k.strip() or len(k) > 255:
            return "label key must contain at least 1 character and a maximum of 255 characters"
        if len(v) > 255:
            return "label value cannot exceed a maximum of 255 characters"
    return None


def _issue_report(source: str, issue: dict[str, Any], tenant: Tenant | None) -> Report:
    from actuators.nico.health import Alert

    fields = {
        "issue_category": issue["category"],
        "summary": issue.get("summary"),
        "details": issue.get("details") or "",
    }
    if tenant is not None:
        fields["tenant_organization_id"] = tenant.org
    alert_id, target = (
        ("TenantReportedIssue", "tenant-reported")
        if source == "tenant-reported-issue"
        else ("RequestRepair", "repair-requested")
    )
    alert = Alert(
        id=alert_id,
        target=target,
        message=json.dumps(fields),
        tenant_message=f"TenantReportedIssue: {issue.get('summary')}",
        classifications=(PREVENT, "SuppressExternalAlerting"),
    )
    return Report(source=source, alerts=(alert,), observed_at=datetime.now(UTC))
