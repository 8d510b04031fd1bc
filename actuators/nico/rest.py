"""NICo's REST API: the machines, instances and labels the repair workflow reads and writes.

Paths are ``/v2/org/{org}/{api_name}/...``; NICo's REST service takes the path segment from its
``api.name`` setting (default ``nico``), and deployments that kept an older name need it configured
(NICo's SDK clients expose the same knob as ``APIName``). Every call carries the JWT bearer token.

Where NICo's server is stricter than its OpenAPI document, this client follows the server
(``rest-api/api/pkg/api/model``): a released issue always has a summary; label maps hold at most 10
pairs (keys 1-255, values up to 255 characters); label updates go alone in their PATCH request. HTTP
errors map onto the actuator vocabulary: 429/5xx and transport errors are temporary, other 4xx
permanent, each with NICo's own ``message``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from actuators.base import PermanentError, TemporaryError

MAX_LABELS = 10
PAGE_SIZE = 100


class NicoRest:
    def __init__(
        self,
        base_url: str,
        org: str,
        token: str,
        *,
        api_name: str = "nico",
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise ValueError("NICo needs a JWT bearer token (BREAKFIX_NICO_TOKEN)")
        self.root = f"/v2/org/{org}/{api_name}"
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self.http.request(method, self.root + path, **kw)
        except httpx.HTTPError as err:
            raise TemporaryError(f"NICo unreachable: {err}", retry_after_s=5.0) from err
        if r.status_code < 400:
            return r
        try:
            message = str(r.json().get("message", r.text))
        except (ValueError, AttributeError):
            message = r.text[:300]
        detail = f"NICo {method} {path}: {r.status_code} {message}"
        if r.status_code == 429 or r.status_code >= 500:
            raise TemporaryError(detail, retry_after_s=float(r.headers.get("Retry-After", "5") or 5))
        raise PermanentError(detail)

    # --- machines ---------------------------------------------------------------------------------

    def machines(self, site_id: str | None = None) -> list[dict[str, Any]]:
        """Every machine the caller may see, page by page (NICo reports the total in X-Pagination)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, Any] = {"pageNumber": page, "pageSize": PAGE_SIZE}
            if site_id:
                params["siteId"] = site_id
            r = self._call("GET", "/machine", params=params)
            batch = r.json()
            out.extend(batch)
            total = _total(r.headers.get("X-Pagination"))
            if not batch or len(batch) < PAGE_SIZE or (total is not None and len(out) >= total):
                return out
            page += 1

    def machine(self, machine_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/machine/{machine_id}").json())

    def set_machine_labels(self, machine_id: str, labels: dict[str, str]) -> dict[str, Any]:
        """Replace the machine's whole label map (NICo keeps nothing that is not sent)."""
        check_labels(labels)
        return dict(self._call("PATCH", f"/machine/{machine_id}", json={"labels": labels}).json())

    # --- instances --------------------------------------------------------------------------------

    def create_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        check_labels(body.get("labels") or {})
        return dict(self._call("POST", "/instance", json=body).json())

    def instance(self, instance_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/instance/{instance_id}").json())

    def release_instance(
        self, instance_id: str, *, repair_tenant: bool, issue: dict[str, str] | None = None
    ) -> None:
        """DELETE the instance (202). ``issue``: NICo's MachineHealthIssue (category, summary,
        details); the server requires a summary even though the document lets it be null."""
        body: dict[str, Any] = {}
        if repair_tenant:
            body["isRepairTenant"] = True
        if issue is not None:
            if not issue.get("summary"):
                raise PermanentError("a released machine health issue needs a summary (NICo requires one)")
            body["machineHealthIssue"] = {k: v[:1024] for k, v in issue.items()}
        self._call("DELETE", f"/instance/{instance_id}", json=body)


def check_labels(labels: dict[str, str]) -> None:
    """NICo's label rules (``ValidateLabels``): at most 10 pairs, key 1-255, value up to 255."""
    if len(labels) > MAX_LABELS:
        raise PermanentError(f"NICo allows at most {MAX_LABELS} labels, got {len(labels)}")
    for k, v in labels.items():
        if not k.strip() or len(k) > 255 or len(v) > 255:
            raise PermanentError(f"label {k!r} breaks NICo's rules (key 1-255 characters, value up to 255)")


def _total(header: str | None) -> int | None:
    if not header:
        return None
    try:
        return int(json.loads(header).get("total"))
    except (ValueError, TypeError, AttributeError):
        return None
