"""A full disk answered as one clear 507, with nothing half-written (see core/storage.py).

Database writes roll back with the request's session; the handlers installed here turn any
full-disk cause (``core.storage.disk_full_cause``) into 507 Insufficient Storage.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.storage import StorageFull, disk_full_cause


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
