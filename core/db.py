"""Database engine and session factory.

SQLite is tuned so that dozens of annotators saving at once wait for each other instead of
failing with "database is locked": WAL lets readers proceed during a write, busy_timeout makes
a writer queue for the lock, and foreign keys are enforced as on PostgreSQL.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _has_news(fd: int) -> bool:
    """Whether a socket has something to read or has hung up (poll without waiting)."""
    if not hasattr(select, "poll"):
        return True  # no poll (Windows): always ping
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _check_idle_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout on PostgreSQL: a connection that the server closed (a restart, a killed
    backend, a crash) is replaced before the request uses it.

    An idle connection's socket is silent until the server says something: a closing server
    sends its FATAL message or at least hangs up, which makes the socket readable. Only then
    is the connection pinged (``SELECT 1``), and one that fails is handed back to the pool as
    disconnected (it connects anew, up to three tries). That costs a ``poll`` system call per
    checkout where ``pool_pre_ping`` costs a round trip to the server for every request."""
    try:
        if dbapi_connection.closed:
            raise DisconnectionError("connection closed")
        if not _has_news(dbapi_connection.fileno()):
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except DisconnectionError:
        raise
    except Exception as error:  # the driver's error for a dead connection
        raise DisconnectionError(str(error)) from error


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; creates the SQLite file's directory if needed."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_size=10, max_overflow=20)
        event.listen(engine, "checkout", _check_idle_connection)
        return engine
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if not url.database or url.database == ":memory:":
        # One shared in-memory database (tools and quick experiments only).
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args=connect_args, pool_size=10, max_overflow=40)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session per request or command; the caller commits, errors roll back."""
    with factory() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
