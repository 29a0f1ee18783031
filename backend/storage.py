"""A full disk answered as one clear 507, with nothing half-written.

Where the service writes: the database (images, masks, everything; SQLite's file or
PostgreSQL's), temporary files (multipart uploads spooled by Starlette, export archives), and
the embedded broker's message files. Each reports a full disk its own way: ``OSError`` ENOSPC
or EDQUOT, SQLite's SQLITE_FULL ("database or disk is full"), PostgreSQL's SQLSTATE 53100
``disk_full``. ``disk_full_cause`` recognizes all of them anywhere in an exception's chain; the
handlers installed here turn them into 507 Insufficient Storage. Database writes roll back
with the request's session; files go through ``write_file_atomically`` (staged, then renamed;
a failed write removes its staging file), so no reader ever sees part of one.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL: Final = 13
POSTGRES_DISK_FULL: Final = "53100"


class StorageFull(Exception):
    """A write found no space; nothing of it was kept."""


def disk_full_cause(error: BaseException) -> BaseException | None:
    """The exception in ``error``'s chain that reports a full disk, or None."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, StorageFull):
            return current
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        if isinstance(current, sqlite3.Error) and (
            getattr(current, "sqlite_errorcode", None) == SQLITE_FULL
            or "database or disk is full" in str(current)
        ):
            return current
        if getattr(current, "sqlstate", None) == POSTGRES_DISK_FULL:
            return current
        if isinstance(current, DBAPIError):
            pending.append(current.orig)
        pending += [current.__cause__, current.__context__]
    return None


def write_file_atomically(path: Path, data: bytes) -> None:
    """Writes ``path`` whole or not at all: to a staging name beside it, then renamed.

    Raises StorageFull (the staging file removed) when the disk is full.
    """
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with staging.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
    except OSError as error:
        staging.unlink(missing_ok=True)
        if error.errno in DISK_FULL_ERRNOS:
            raise StorageFull(f"no space left for {path.name}") from error
        raise


def storage_full_response(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "detail": "The server's storage is full: nothing of this request "
            f"({request.method} {request.url.path}) was written. Free disk space (or ask "
            "the administrator to), then send it again."
        },
        status_code=status.HTTP_507_INSUFFICIENT_STORAGE,
        headers={"Retry-After": "300"},
    )


def install_storage_full_handlers(app: FastAPI) -> None:
    """507 for a full disk wherever it surfaces; any other error goes on as before."""

    async def storage_error(request: Request, error: Exception) -> Response:
        if disk_full_cause(error) is None:
            raise error
        return storage_full_response(request)

    async def bad_request(request: Request, error: Exception) -> Response:
        # FastAPI answers 400 for any failure while reading a body, a full spool disk too.
        if disk_full_cause(error) is not None:
            return storage_full_response(request)
        assert isinstance(error, StarletteHTTPException)
        return await http_exception_handler(request, error)

    app.add_exception_handler(StorageFull, storage_error)
    app.add_exception_handler(OSError, storage_error)
    # OperationalError only: I/O and resource errors; data errors keep their own handlers.
    app.add_exception_handler(OperationalError, storage_error)
    app.add_exception_handler(400, bad_request)
