"""Jira through its REST API v2 (Server/Data Center and Cloud both serve these paths).

- create: ``POST /rest/api/2/issue``; the node is a label (``breakfix-node-<node>``) so the open
  ticket for a node is one JQL search away (``GET /rest/api/2/search``), as are the project's
  recent tickets;
- comment: ``POST /rest/api/2/issue/{key}/comment``;
- attach: ``POST /rest/api/2/issue/{key}/attachments`` as multipart field ``file`` with the
  ``X-Atlassian-Token: no-check`` header Jira requires;
- close: the first transition whose target status category is ``done``.

HTTP errors map onto the actuator vocabulary: 429 and 5xx are temporary (Retry-After honoured),
other 4xx permanent.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from actuators.base import PermanentError, TemporaryError
from actuators.tickets.backend import HumanCloser
from actuators.tickets.model import Attachment, Ticket, TicketDraft, node_label

API = "/rest/api/2"


class JiraBackend:
    def __init__(
        self,
        base_url: str,
        project: str,
        *,
        user: str | None = None,
        token: str | None = None,
        issue_type: str = "Bug",
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``user`` + ``token``: basic auth (Cloud API token); ``token`` alone: bearer (Data Center PAT)."""
        auth: httpx.Auth | None = httpx.BasicAuth(user, token or "") if user else None
        headers = {"Accept": "application/json"}
        if token and not user:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.project = project
        self.issue_type = issue_type
        self.http = httpx.Client(
            base_url=self.base_url, auth=auth, headers=headers, timeout=timeout_s, transport=transport
        )

    def close_client(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, API + path, **kw)
        except httpx.HTTPError as err:
            raise TemporaryError(f"Jira unreachable: {err}", retry_after_s=5.0) from err
        if r.status_code == 429 or r.status_code >= 500:
            retry = float(r.headers.get("Retry-After", "5") or 5)
            raise TemporaryError(f"Jira answered {r.status_code} to {method} {path}", retry_after_s=retry)
        if r.status_code >= 400:
            raise PermanentError(f"Jira refused {method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def _ticket(self, issue: dict[str, Any]) -> Ticket:
        f = issue.get("fields") or {}
        labels = list(f.get("labels") or [])
        node = next((lb[len(node_label("")) :] for lb in labels if lb.startswith(node_label(""))), "")
        done = ((f.get("status") or {}).get("statusCategory") or {}).get("key") == "done"
        return Ticket(
            key=issue["key"],
            link=f"{self.base_url}/browse/{issue['key']}",
            node=node,
            summary=str(f.get("summary") or ""),
            description=str(f.get("description") or ""),
            status="closed" if done else "open",
            labels=labels,
        )

    def get(self, key: str) -> Ticket:
        return self._ticket(
            self._call("GET", f"/issue/{key}", params={"fields": "summary,description,labels,status"})
        )

    def _search(self, jql: str, limit: int) -> list[Ticket]:
        found = self._call(
            "GET",
            "/search",
            params={"jql": jql, "maxResults": limit, "fields": "summary,description,labels,status"},
        )
        return [self._ticket(i) for i in ((found or {}).get("issues") or [])[:limit]]

    def find_open(self, node: str) -> Ticket | None:
        jql = (
            f'project = "{self.project}" AND labels = "{node_label(node)}" '
            "AND statusCategory != Done ORDER BY created DESC"
        )
        hits = self._search(jql, 1)
        return hits[0] if hits else None

    def recent(self, limit: int) -> list[Ticket]:
        return self._search(f'project = "{self.project}" ORDER BY created DESC', limit)

    def create(self, draft: TicketDraft, body: str) -> Ticket:
        labels = [node_label(draft.enrichment.node), *draft.labels]
        fields = {
            "project": {"key": self.project},
            "summary": draft.summary,
            "description": body,
            "issuetype": {"name": self.issue_type},
            "labels": labels,
        }
        made = self._call("POST", "/issue", json={"fields": fields})
        return Ticket(
            key=made["key"],
            link=f"{self.base_url}/browse/{made['key']}",
            node=draft.enrichment.node,
            summary=draft.summary,
            description=body,
            labels=labels,
            decision_id=draft.decision_id,
        )

    def comment(self, key: str, body: str, author: str) -> None:
        self._call("POST", f"/issue/{key}/comment", json={"body": f"[{author}] {body}"})

    def attach(self, key: str, name: str, content: bytes) -> Attachment:
        made = self._call(
            "POST",
            f"/issue/{key}/attachments",
            files={"file": (name, content, "application/octet-stream")},
            headers={"X-Atlassian-Token": "no-check"},
        )
        first = (made or [{}])[0]
        return Attachment(
            name=str(first.get("filename", name)),
            size=int(first.get("size", len(content))),
            sha256=hashlib.sha256(content).hexdigest(),
        )

    def close(self, key: str, resolution: str, by: HumanCloser) -> None:
        options = (self._call("GET", f"/issue/{key}/transitions") or {}).get("transitions") or []
        done = [t for t in options if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"]
        if not done:
            raise PermanentError(f"{key} has no transition to a done status; close it in Jira")
        self.comment(key, f"Closed: {resolution}", by.actor)
        self._call("POST", f"/issue/{key}/transitions", json={"transition": {"id": done[0]["id"]}})
