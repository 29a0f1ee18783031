"""Structured logs: one JSON object per line, each carrying the request id (API) or the job
id (worker) of the work it belongs to.

The ids live in context variables: the API's middleware (backend/request_ids.py) sets the
request's, ``worker.tasks.common.run_job`` the job's. A log record factory copies both onto every
record, so any handler (pytest's caplog included) sees them. ``configure_logging`` is
called by ``create_app`` and the worker's start, never at import.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[int | None] = ContextVar("job_id", default=None)


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
