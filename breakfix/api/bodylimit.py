"""The request body limit, enforced before the body is parsed and before the caller is known.

A declared ``Content-Length`` over the limit is answered 413 without reading a byte; a body without
one (chunked) is counted as it arrives and refused at the first byte past the limit. Either way the
auth middleware, which reads the body first, never holds more than the limit in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Refused = Callable[[str, str], Awaitable[None]]
"""Called with the method and path of each refused request (counted as anonymous: no caller yet)."""


class BodyTooLarge(Exception):
    """Raised from ``receive`` at the first byte past the limit; turned into a 413 here."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, refused: Refused) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await self.refused(str(scope.get("method", "")), str(scope.get("path", "")))
        detail = f"request body over {self.max_bytes} bytes: send a smaller body (one operation per call)"
        body = orjson.dumps({"detail": detail})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
