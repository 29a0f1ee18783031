"""Structured logs: one JSON object per line, each carrying the request id (API) or the job
id (worker) of the work it belongs to.

The ids live in context variables: ``RequestId`` (an ASGI middleware) sets the request's,
``worker.tasks.common.run_job`` the job's. A log record factory copies both onto every
record, so any handler (pytest's caplog included) sees them. ``configure_logging`` is
called by ``create_app`` and the worker's start, never at import.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[int | None] = ContextVar("job_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed only if it is short and plain (it lands in logs and headers).
_MAX_REQUEST_ID = 128
_ACCESS = logging.getLogger("tessera.access")

# Attributes every LogRecord has; anything else on a record was passed as ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: time, level, logger, message, the ids, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


_record_factory_installed = False


def _install_record_factory() -> None:
    global _record_factory_installed
    if _record_factory_installed:
        return
    make_record: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def with_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        return record

    logging.setLogRecordFactory(with_ids)
    _record_factory_installed = True


class _TesseraHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure_logging`` added, so a second call replaces it."""


def configure_logging(level: str) -> None:
    """JSON lines on stderr from the root logger at ``level`` (Celery's own records included:
    the worker does not let Celery take the root logger); idempotent, as each app made in a
    test calls it."""
    _install_record_factory()
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _TesseraHandler)]:
        root.removeHandler(old)
    handler = _TesseraHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


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
