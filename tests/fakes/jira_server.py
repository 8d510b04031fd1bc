"""A small Jira REST v2 server on loopback, for testing the Jira adapter through real HTTP.

It serves the paths the adapter uses, with Jira's own rules where they matter: basic auth on every
call, ``X-Atlassian-Token: no-check`` on attachment uploads (403 without it, as Jira answers),
multipart field ``file``, 400 with ``errors`` for a bad create, 404 for an unknown issue, and a
workflow whose ``Done`` transition moves the status category to ``done``. ``fail_next`` queues
status codes to answer instead (to exercise 429/5xx handling).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

TRANSITIONS = [
    {
        "id": "21",
        "name": "In Progress",
        "to": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
    },
    {"id": "31", "name": "Done", "to": {"name": "Done", "statusCategory": {"key": "done"}}},
]
OPEN = {"name": "To Do", "statusCategory": {"key": "new"}}
DONE = TRANSITIONS[1]["to"]


class FakeJira:
    def __init__(self, project: str = "OPS", user: str = "bot@example.com", token: str = "t0k3n") -> None:
        self.project = project
        self.auth = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        self.issues: dict[str, dict[str, Any]] = {}
        self.fail_next: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeJira:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- behaviour ---------------------------------------------------------------------

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        if headers.get("Authorization") != self.auth:
            return 401, {"errorMessages": ["You are not authenticated."]}
        if self.fail_next:
            return self.fail_next.pop(0), {"errorMessages": ["injected failure"]}
        if method == "POST" and path == "/rest/api/2/issue":
            return self._create(json.loads(body))
        if method == "GET" and path == "/rest/api/2/search":
            return 200, self._search(query.get("jql", [""])[0])
        m = re.fullmatch(r"/rest/api/2/issue/([A-Z]+-\d+)(/[a-z]+)?", path)
        if not m or m.group(1) not in self.issues:
            return 404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}
        issue, sub = self.issues[m.group(1)], m.group(2) or ""
        if method == "GET" and sub == "":
            return 200, issue
        if method == "POST" and sub == "/comment":
            comment = {"id": str(len(issue["comments"]) + 1), "body": json.loads(body)["body"]}
            issue["comments"].append(comment)
            return 201, comment
        if method == "POST" and sub == "/attachments":
            return self._attach(issue, headers, body)
        if method == "GET" and sub == "/transitions":
            return 200, {"transitions": TRANSITIONS}
        if method == "POST" and sub == "/transitions":
            wanted = json.loads(body)["transition"]["id"]
            target = next((t for t in TRANSITIONS if t["id"] == wanted), None)
            if target is None:
                return 400, {"errorMessages": [f"transition {wanted} is not valid"]}
            issue["fields"]["status"] = target["to"]
            return 204, None
        return 405, {"errorMessages": [f"{method} {path} not served by the fake"]}

    def _create(self, doc: dict[str, Any]) -> tuple[int, Any]:
        f = doc.get("fields") or {}
        errors = {}
        if (f.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        if not f.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if not (f.get("issuetype") or {}).get("name"):
            errors["issuetype"] = "valid issue type is required"
        if errors:
            return 400, {"errorMessages": [], "errors": errors}
        with self._lock:
            key = f"{self.project}-{len(self.issues) + 1}"
            self.issues[key] = {
                "key": key,
                "fields": {**f, "status": OPEN},
                "comments": [],
                "attachments": [],
            }
        return 201, {
            "id": str(10000 + len(self.issues)),
            "key": key,
            "self": f"{self.url}/rest/api/2/issue/{key}",
        }

    def _search(self, jql: str) -> dict[str, Any]:
        label = re.search(r'labels = "([^"]+)"', jql)
        not_done = "statusCategory != Done" in jql
        hits = [
            i
            for i in self.issues.values()
            if (not label or label.group(1) in i["fields"].get("labels", []))
            and not (not_done and i["fields"]["status"]["statusCategory"]["key"] == "done")
        ]
        hits.reverse()  # ORDER BY created DESC
        return {"total": len(hits), "issues": hits}

    def _attach(self, issue: dict[str, Any], headers: Any, body: bytes) -> tuple[int, Any]:
        if headers.get("X-Atlassian-Token") != "no-check":
            return 403, {"errorMessages": ["XSRF check failed"]}
        head = f"Content-Type: {headers.get('Content-Type')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        files = [p for p in msg.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
        if not files:
            return 400, {"errorMessages": ["no multipart field named 'file'"]}
        made = []
        for part in files:
            content = part.get_payload(decode=True) or b""
            att = {
                "id": str(len(issue["attachments"]) + 1),
                "filename": part.get_filename(),
                "size": len(content),
            }
            issue["attachments"].append({**att, "content": content})
            made.append(att)
        return 200, made

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append((self.command, url.path))
                status, doc = fake._route(self.command, url.path, parse_qs(url.query), self.headers, body)
                data = b"" if doc is None else json.dumps(doc, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
