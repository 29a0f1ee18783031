"""The API's request id: read from X-Request-ID (or made), kept in ``core.logs.request_id`` for
the request's log records, echoed in the answer, and one access log line per request."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import request_id

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed only if it is short and plain (it lands in logs and headers).
_MAX_REQUEST_ID = 128
_ACCESS = logging.getLogger("tessera.access")


def _request_id_from(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= _MAX_REQUEST_ID and text.isascii() and text.isprintable():
                return text
    return uuid.uuid4().hex


class RequestId:
    """Reads X-Request-ID (or makes one), holds it in ``request_id`` for the request's
    logs, echoes it in the answer and logs method, path, status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id_from(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # an exception that escapes everything answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000.0, 1)
            level = logging.ERROR if status >= 500 else logging.INFO
            _ACCESS.log(
                level,
                "%s %s %d %.1f ms",
                scope["method"],
                scope["path"],
                status,
                duration_ms,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
            request_id.reset(token)
