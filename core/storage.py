"""Writes that keep nothing half-written, and recognizing a full disk however it is reported.

Where Tessera writes: the database (SQLite's file or PostgreSQL's), temporary files and the
embedded broker's message files. Each reports a full disk its own way: ``OSError`` ENOSPC or
EDQUOT, SQLite's SQLITE_FULL ("database or disk is full"), PostgreSQL's SQLSTATE 53100
``disk_full``. ``disk_full_cause`` recognizes all of them anywhere in an exception's chain; files
go through ``write_file_atomically`` (staged, then renamed; a failed write removes its staging
file), so no reader ever sees part of one.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Final

from sqlalchemy.exc import DBAPIError

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
