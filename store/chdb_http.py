"""The embedded store (chdb) served over the ClickHouse HTTP protocol, so several processes share it.

chdb is one engine per process and one process per data path: a second opener fails on a lock. The
local stack (``breakfix up``) therefore lets one process own the data path and serve it on loopback;
the sink, the API and ``breakfix sql`` reach it with clickhouse-connect's ordinary HTTP client, the
same code path as a production ClickHouse server.

What is implemented is what clickhouse-connect sends (read from clickhouse-connect 1.x): ``GET /ping``;
``POST /?query=…&database=…`` with the SQL (or, for inserts, ``INSERT … FORMAT Native`` + Native
data) in the body, possibly chunked and lz4/gzip/deflate-compressed (clickhouse-connect writes one
lz4 frame per insert block, so a body is several frames back to back); settings and ``param_*``
bindings as URL parameters; errors as a non-2xx status with ``X-ClickHouse-Exception-Code``.

Users, as a ClickHouse server's ``users.xml`` would define them: each has a password and either full
access or a read-only profile. A read-only user's profile is what a ClickHouse server's read-only
profile with constraints gives: ``readonly = 2`` (reads and setting changes only, never a write or
DDL; clickhouse-connect then still sends its per-query limits, as to a real server) and the time,
memory and result-size limits of :class:`ReadOnlyLimits` applied *after* the client's URL settings
(so a client cannot raise them), with ``readonly`` set last. chdb has no settings constraints, so a
``SETTINGS name = value`` clause in a read-only user's statement is refused outright, where a server
would clamp it to the constraint. With no users configured every request is served as a
full-access user (loopback only; the local stack always configures users).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hmac
import json
import os
import re
import socket
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import lz4.frame

from store.owner import StoreInUse, claim

# Parameters the HTTP layer consumes itself; everything else is a setting for the engine.
_TRANSPORT = {
    "query", "database", "query_id", "session_id", "session_timeout", "session_check", "compress",
    "decompress", "wait_end_of_query", "client_protocol_version", "enable_http_compression",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "default_format",
    "buffer_size", "cancel_http_readonly_queries_on_client_close", "user", "password",
}  # fmt: skip
_INSERT = re.compile(rb"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)[ \t]*\r?\n?", re.I | re.S)
_TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
_RESULT_SET = re.compile(rb"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b", re.I)
_CODE = re.compile(r"Code: (\d+)")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SETTINGS_PROBE = re.compile(
    rb"^\s*SELECT\s+[\w\s,]+\s+FROM\s+system\.settings(\s+LIMIT\s+\d+)?(\s+FORMAT\s+\w+)?\s*;?\s*$", re.I
)
"""clickhouse-connect's connect-time read of ``system.settings``, which tells it which settings it may
send. A server with a constrained read-only profile reports the limits as changeable (downwards);
chdb has no constraints, so this one read of the settings table runs before ``readonly`` is set,
and reports them changeable. It reads settings only: nothing is written, nothing else runs so."""
_SETTINGS_CLAUSE = re.compile(rb"\bSETTINGS\s+[A-Za-z_][A-Za-z0-9_]*\s*=", re.I)
MAX_BODY_BYTES = 256 << 20
"""Largest request body accepted (a sink batch is a few MB); larger is answered 413 unread."""


class HttpError(Exception):
    """A refusal answered with ``status`` and ClickHouse's error ``code`` (e.g. 516 bad password)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class ReadOnlyLimits:
    """The read-only profile: what a ClickHouse server's read-only user profile would set."""

    max_execution_time: int = 30
    max_memory_usage: int = 2 << 30
    max_result_rows: int = 1_000_000
    result_overflow_mode: str = "throw"

    def clamp(self, asked: Mapping[str, str]) -> dict[str, str]:
        """The profile's limits as a constraint would apply them: a client may ask for less (a
        lower numeric limit, or ``break`` instead of ``throw``), never for more; 0 means unlimited.

        >>> ReadOnlyLimits(max_result_rows=100).clamp({"max_result_rows": "10"})["max_result_rows"]
        '10'
        >>> ReadOnlyLimits(max_result_rows=100).clamp({"max_result_rows": "0"})["max_result_rows"]
        '100'
        """
        out: dict[str, str] = {}
        for name, cap in self.__dict__.items():
            given = asked.get(name)
            if isinstance(cap, int):
                try:
                    n = int(given) if given is not None else 0
                except ValueError:
                    n = 0
                out[name] = str(n if 0 < n < cap else cap)
            else:
                out[name] = given if given in ("throw", "break") else str(cap)
        return out


@dataclass(frozen=True)
class User:
    name: str
    password: str
    readonly: bool = False


@dataclass
class ServerConfig:
    users: Mapping[str, User] = field(default_factory=dict)
    limits: ReadOnlyLimits = field(default_factory=ReadOnlyLimits)
    insert_delay_s: float = 0.0
    """Tests: answer every insert this late, after the rows are written (a slow server)."""


def decompress(data: bytes, encoding: str) -> bytes:
    """Undo Content-Encoding; lz4 bodies may be several frames back to back: decompress them all."""
    if encoding in ("", "identity"):
        return data
    if encoding == "lz4":
        out = []
        while data:
            d = lz4.frame.LZ4FrameDecompressor()
            out.append(d.decompress(data))
            data = d.unused_data
        return b"".join(out)
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    raise HttpError(400, 1001, f"unsupported Content-Encoding {encoding!r}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # request lines would drown the log
        return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY_BYTES:
                    raise HttpError(413, 1001, f"request body over {MAX_BODY_BYTES} bytes")
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise HttpError(413, 1001, f"request body over {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _user(self, params: dict[str, str]) -> User | None:
        """The caller, from ClickHouse's headers, basic auth or URL parameters (in that order)."""
        name = self.headers.get("X-ClickHouse-User")
        password = self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        if name is None and auth.lower().startswith("basic "):
            with contextlib.suppress(ValueError):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if name is None and "user" in params:
            name, password = params["user"], params.get("password", "")
        return self.server.authenticate(name or "default", password)

    def do_GET(self) -> None:
        if urlparse(self.path).path.rstrip("/") == "/ping":
            self._reply(200, b"Ok.\n")
        else:
            self.do_POST()

    def do_POST(self) -> None:
        params = dict(parse_qsl(urlparse(self.path).query, keep_blank_values=True))
        try:
            user = self._user(params)
            body = decompress(self._body(), self.headers.get("Content-Encoding", ""))
            status, payload, headers = self.server.execute(user, params, body)
        except HttpError as err:
            self.close_connection = True  # its body may be unread: never parse it as the next request
            self._reply(
                err.status,
                f"Code: {err.code}. {err}".encode(),
                {"X-ClickHouse-Exception-Code": str(err.code)},
            )
            return
        except Exception as err:  # the engine's error goes back as ClickHouse would send it
            msg = str(err)
            code = _CODE.search(msg)
            self._reply(500, msg.encode(), {"X-ClickHouse-Exception-Code": code.group(1) if code else "1001"})
            return
        self._reply(status, payload, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], path: str, config: ServerConfig) -> None:
        super().__init__(addr, _Handler)
        self.data_path = path
        self.config = config
        self.lock = threading.Lock()  # one engine: statements take turns
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def close_connections(self) -> None:
        """Drop keep-alive connections too, so a stopped server really looks down to clients."""
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    def authenticate(self, name: str, password: str) -> User | None:
        """``None`` means full access (no users configured); a wrong name or password is 516."""
        users = self.config.users
        if not users:
            return None
        user = users.get(name)
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            raise HttpError(
                401,
                516,
                f"{name}: Authentication failed: password is incorrect, or there is no user with such name",
            )
        return user

    def execute(
        self, user: User | None, params: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        import chdb

        sql = params.get("query", "").encode()
        text = sql + b"\n" + body if sql and body else sql or body
        binds = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in _TRANSPORT and not k.startswith("param_")}
        readonly = user is not None and user.readonly
        level = "2"
        if readonly:
            # the profile's constraint on readonly is "at least 1": a client may only make it stricter
            level = "1" if settings.pop("readonly", None) == "1" else "2"
            settings.update(self.config.limits.clamp(settings))
            if _SETTINGS_PROBE.match(text):
                level = ""  # see _SETTINGS_PROBE
        for name in settings:
            if not _SETTING_NAME.match(name):
                raise HttpError(400, 115, f"Unknown setting {name!r}")
        if readonly and _SETTINGS_CLAUSE.search(text):
            who = user.name if user is not None else ""
            raise HttpError(403, 452, f"{who}: a SETTINGS clause cannot change a read-only profile's limits")
        with self.lock:
            conn = chdb.connect(self.data_path)  # type: ignore[no-untyped-call] # a fresh handle per request: settings never leak
            try:
                if params.get("database"):
                    conn.query(f"USE `{params['database'].replace('`', '')}`", "TabSeparated")
                for k, v in settings.items():
                    conn.query(f"SET {k} = {_quote(v)}", "TabSeparated")
                if readonly and level:
                    conn.query(f"SET readonly = {level}", "TabSeparated")
                return self._run(conn, text, binds)
            finally:
                conn.close()

    def _run(self, conn: Any, text: bytes, binds: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        ins = _INSERT.match(text)
        data = text[ins.end() :] if ins else b""
        if ins and data.strip():
            fd, tmp = tempfile.mkstemp(suffix=".native")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                target, fmt = ins.group(1).decode(), ins.group(2).decode()
                result = conn.query(f"INSERT INTO {target} FROM INFILE '{tmp}' FORMAT {fmt}", "TabSeparated")
            finally:
                os.unlink(tmp)
            time.sleep(self.config.insert_delay_s)
            summary = {"written_rows": str(result.rows_read()), "written_bytes": str(result.bytes_read())}
            return 200, b"", {"X-ClickHouse-Summary": json.dumps(summary)}
        m = _TRAILING_FORMAT.search(text)
        fmt = m.group(1).decode() if m else "TabSeparated"
        result = conn.query(text.decode(), fmt, params=binds)
        out = result.bytes() or b""
        headers = {"X-ClickHouse-Timezone": "UTC"}
        if m or _RESULT_SET.match(text):
            headers["X-ClickHouse-Format"] = fmt
        return 200, out, headers


class ChdbHttpServer:
    """Serve ``chdb_path`` on ``host:port`` (0: a free port) until :meth:`stop`; restartable on the
    same port, which is how tests make the store go down and come back."""

    def __init__(
        self,
        chdb_path: str | Path,
        port: int = 0,
        host: str = "127.0.0.1",
        config: ServerConfig | None = None,
    ) -> None:
        self.path = os.path.realpath(chdb_path)
        self.host, self.port = host, port
        self.config = config or ServerConfig()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._release: Callable[[], None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def dsn(self, user: str | None = None) -> str:
        """A store DSN for clickhouse-connect, with ``user``'s credentials when given."""
        if user is None:
            return self.url
        u = self.config.users[user]
        return f"http://{u.name}:{u.password}@{self.host}:{self.port}"

    def set_insert_delay(self, seconds: float) -> None:
        self.config.insert_delay_s = seconds

    def start(self) -> ChdbHttpServer:
        server = _Server((self.host, self.port), self.path, self.config)
        self.port = server.server_address[1]
        try:  # bound, not serving yet: own the directory before any request opens it
            self._release = claim(self.path, served=self.url)
        except StoreInUse:
            server.server_close()
            raise
        self._server = server
        self._thread = threading.Thread(target=self._server.serve_forever, name="chdb-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._release is not None:
            self._release()
            self._release = None

    def __enter__(self) -> ChdbHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
